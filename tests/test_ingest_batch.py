"""Batched loading (many files per read_csv) gives exactly what the per-file gate gives.

The batch path only ever accepts: any file it doubts goes to the per-file gate, which
finds the row and column at fault. These tests load the whole corpus both ways and
compare every row, every load record and every rejection, and check that the batch path
did the loading of clean files (otherwise the comparison would prove nothing).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from corpus.build_corpus import build_corpus
from dagster_project.lib.ingest import batch as ingest_batch
from dagster_project.lib.ingest.landing import ingest_landing
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse.working_copy import ensure_working_copy
from gacc_files import DEFAULT_ORDER, magnet_row, write_bytes, write_extract

TODAY = dt.date(2026, 1, 15)

ROWS_SQL = """SELECT source_file, file_sha256, row_number, flow, currency, period_start, period_end, is_cumulative, hs8,
                     commodity_name, partner_code, partner_name, regime_code, regime_name, province_code, province_name,
                     quantity, unit, unit_code, declared_unit_code, unit_factor, quantity2, unit2, value, load_id
              FROM raw.customs_rows ORDER BY ALL"""
LOADS_SQL = """SELECT load_id, rank() OVER (ORDER BY load_seq) AS load_order, file_path, file_sha256, file_size_bytes,
                      flow, encoding, header_language, currency, dimensions, period_source, period_start, period_end,
                      row_count, unit_conversions, warnings
               FROM raw.customs_loads ORDER BY load_seq"""
REJECTED_SQL = "SELECT file_path, file_sha256, reason FROM audit.rejected_files ORDER BY ALL"
LOAD_MONTHS_SQL = "SELECT load_id, month FROM raw.customs_load_months ORDER BY ALL"
ROW_MONTHS_SQL = "SELECT DISTINCT load_id, period_start FROM raw.customs_rows ORDER BY ALL"


def _ingest(root: Path, landing: Path, batch: bool):
    settings = Settings(landing_dir=landing, warehouse_path=root / "warehouse.duckdb")
    ensure_working_copy(settings)
    con = duckdb.connect(str(settings.working_path))
    try:
        report = ingest_landing(con, landing, settings.staging_dir, today=TODAY, batch=batch)
        tables = [con.execute(sql).fetchall() for sql in (ROWS_SQL, LOADS_SQL, REJECTED_SQL)]
        assert con.execute(LOAD_MONTHS_SQL).fetchall() == con.execute(ROW_MONTHS_SQL).fetchall()
    finally:
        con.close()
    assert not settings.staging_dir.exists() or list(settings.staging_dir.iterdir()) == []
    return report, tables


def _compare(tmp_path: Path, landing: Path):
    batched, batched_tables = _ingest(tmp_path / "batched", landing, batch=True)
    single, single_tables = _ingest(tmp_path / "single", landing, batch=False)
    for name, a, b in zip(("raw.customs_rows", "raw.customs_loads", "audit.rejected_files"), batched_tables, single_tables):
        assert a == b, f"{name} differs between the batched and the per-file load"
    assert [r.file_path for r in batched.loaded] == [r.file_path for r in single.loaded]
    assert [(r.file_path, r.warnings) for r in batched.loaded] == [(r.file_path, r.warnings) for r in single.loaded]
    assert [(r.file_path, r.reason) for r in batched.rejected] == [(r.file_path, r.reason) for r in single.rejected]
    assert batched.skipped == single.skipped and single.batched == 0
    return batched, batched_tables


@pytest.mark.parametrize("batch_files", [100, 4])
def test_the_whole_corpus_loads_the_same_batched_or_file_by_file(tmp_path, monkeypatch, batch_files):
    monkeypatch.setattr(ingest_batch, "BATCH_FILES", batch_files)
    landing = tmp_path / "landing"
    build_corpus(landing, TODAY)
    report, (rows, loads, rejected) = _compare(tmp_path, landing)
    assert len(report.loaded) >= 25 and len(report.rejected) >= 25 and len(rows) > 10_000
    # the plain downloads went in many per statement; the odd ones (blank lines, tonnes, ...) one by one
    assert 15 <= report.batched < len(report.loaded), report.batched


def test_a_bad_file_in_a_batch_is_found_and_the_others_still_go_together(tmp_path):
    landing = tmp_path / "landing"
    partners = ["502", "304", "133", "116", "110", "142"]
    for month in range(1, 9):
        rows = [magnet_row(f"2025{month:02d}", p, 1000 + i, 50_000 + i) for i, p in enumerate(partners)]
        if month == 6:
            rows[2]["quantity"] = -5  # a negative quantity: the per-file gate names row 3
        path = write_extract(landing / "exports" / f"2025{month:02d}.csv", rows, lang="zh" if month % 2 else "en",
                             mtime=1_700_000_000 + month)
        if month == 4:  # cut off mid-row: DuckDB cannot parse the batch holding it
            write_bytes(path, path.read_bytes()[:-25], mtime=1_700_000_000 + month)
    report, (rows, loads, rejected) = _compare(tmp_path, landing)
    reasons = {r.file_path: r.reason for r in report.rejected}
    assert sorted(reasons) == ["exports/202504.csv", "exports/202506.csv"]
    assert "truncated" in reasons["exports/202504.csv"]
    assert "negative" in reasons["exports/202506.csv"] and "row 3" in reasons["exports/202506.csv"]
    assert [r.file_path for r in report.loaded] == [f"exports/2025{m:02d}.csv" for m in (1, 2, 3, 5, 7, 8)]
    assert report.batched == 6 and len(rows) == 36


def test_a_failure_while_the_next_batch_is_transcoding_leaves_nothing_staged(tmp_path, monkeypatch):
    """The next batch is transcoded in a thread while one loads; a crash of the load cleans both up."""
    monkeypatch.setattr(ingest_batch, "BATCH_FILES", 2)
    landing = tmp_path / "landing"
    for month in range(1, 7):
        write_extract(landing / "exports" / f"magnets_2025{month:02d}.csv", [magnet_row(f"2025{month:02d}", "502", 1000 * month, 50_000 * month)],
                      mtime=1_750_000_000 + month)
    settings = Settings(landing_dir=landing, warehouse_path=tmp_path / "warehouse.duckdb")
    ensure_working_copy(settings)
    loads = []
    real_load = ingest_batch.BatchLoader.load

    def load_then_crash(self, candidates, batched=True, ready=None):
        loads.append([c.lf.rel for c in candidates])
        if len(loads) == 2:
            raise RuntimeError("disk full")
        yield from real_load(self, candidates, batched, ready)

    monkeypatch.setattr(ingest_batch.BatchLoader, "load", load_then_crash)
    con = duckdb.connect(str(settings.working_path))
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            ingest_landing(con, landing, settings.staging_dir, today=TODAY)
        # the first batch loaded, in order; the third was queued (transcoded) when the second failed
        assert con.execute("SELECT list(file_path ORDER BY load_seq) FROM raw.customs_loads").fetchone()[0] == loads[0]
    finally:
        con.close()
    assert loads[0] == ["exports/magnets_202501.csv", "exports/magnets_202502.csv"]
    assert not settings.staging_dir.exists() or list(settings.staging_dir.iterdir()) == []


@pytest.mark.parametrize("batch", [True, False], ids=["batched", "per-file"])
def test_each_load_records_the_months_of_its_rows(tmp_path, batch):
    """raw.customs_load_months is the file -> months mapping the next build reads: every load's
    distinct row months, a revised file's under its own new load."""
    landing = tmp_path / "landing"
    two_months = [magnet_row("202504", "502", 1000, 50_000), magnet_row("202505", "502", 1100, 55_000)]
    write_extract(landing / "exports" / "magnets_202504-202505.csv", two_months, mtime=1_750_000_001)
    june = write_extract(landing / "exports" / "magnets_202506.csv", [magnet_row("202506", "116", 700, 30_000)],
                         lang="en", mtime=1_750_000_002)
    write_extract(landing / "exports" / "magnets_cumulative.csv", [magnet_row("202501-202502", "304", 90, 9_000)],
                  mtime=1_750_000_003)  # a cumulative figure: its month is the period's first
    write_extract(landing / "imports" / "202507_magnets.csv", [magnet_row("", "142", 80, 8_000)],
                  order=[c for c in DEFAULT_ORDER if c != "period"], mtime=1_750_000_004)  # the month from the name
    settings = Settings(landing_dir=landing, warehouse_path=tmp_path / "warehouse.duckdb")
    ensure_working_copy(settings)
    con = duckdb.connect(str(settings.working_path))
    try:
        first = ingest_landing(con, landing, settings.staging_dir, today=TODAY, batch=batch)
        assert len(first.loaded) == 4 and first.rejected == []
        assert (first.batched > 0) == batch  # the path under test did the loading
        # revised in place: the same path with new content and one more month
        write_extract(june, [magnet_row("202506", "116", 750, 31_000), magnet_row("202503", "116", 10, 500)],
                      lang="en", mtime=1_750_000_010)
        second = ingest_landing(con, landing, settings.staging_dir, today=TODAY, batch=batch)
        assert [r.file_path for r in second.loaded] == ["exports/magnets_202506.csv"]

        assert con.execute(LOAD_MONTHS_SQL).fetchall() == con.execute(ROW_MONTHS_SQL).fetchall()
        months = con.execute(
            """SELECT l.file_path, list(m.month ORDER BY m.month) FROM raw.customs_loads l
               LEFT JOIN raw.customs_load_months m USING (load_id) GROUP BY l.file_path, l.load_seq ORDER BY l.load_seq"""
        ).fetchall()
        assert months == [
            ("exports/magnets_202504-202505.csv", [dt.date(2025, 4, 1), dt.date(2025, 5, 1)]),
            ("exports/magnets_202506.csv", [dt.date(2025, 6, 1)]),
            ("exports/magnets_cumulative.csv", [dt.date(2025, 1, 1)]),
            ("imports/202507_magnets.csv", [dt.date(2025, 7, 1)]),
            ("exports/magnets_202506.csv", [dt.date(2025, 3, 1), dt.date(2025, 6, 1)]),
        ]
    finally:
        con.close()
