"""Hostile file names and files: they load or are rejected cleanly; nothing escapes the landing dir."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.warehouse import working_copy as wh
from dagster_project.lib.ingest.landing import ingest_landing
from dagster_project.lib.settings import Settings
from gacc_files import magnet_row, write_extract

HOSTILE_NAMES = [
    "quote'_202506.csv",
    'double"quote_202506.csv',
    "semi;colon; DROP TABLE raw.customs_rows;--_202506.csv",
    "dots..in..name_202506.csv",
    "spaces in name 202506.csv",
    "new\nline_202506.csv",
    "稀土永磁_出口_202506.csv",
    "x" * 200 + "_202506.csv",
    "$(touch pwned)_202506.csv",
]


@pytest.fixture
def gate(tmp_path):
    settings = Settings(landing_dir=tmp_path / "landing", warehouse_path=tmp_path / "wh" / "warehouse.duckdb")
    wh.ensure_working_copy(settings)
    con = duckdb.connect(str(settings.working_path))
    yield settings, con
    con.close()


def _write_without_period_column(path: Path, partner: str) -> None:
    rows = [magnet_row("", partner, 1000, 50_000)]
    write_extract(path, rows, order=("hs8", "commodity_name", "partner_code", "partner_name", "quantity", "unit", "value"))


def test_hostile_file_names_load_with_their_names_kept(gate, tmp_path):
    settings, con = gate
    for i, name in enumerate(HOSTILE_NAMES):
        _write_without_period_column(settings.landing_dir / "exports" / name, partner=str(101 + i))
    report = ingest_landing(con, settings.landing_dir, settings.staging_dir)
    assert report.rejected == []
    assert sorted(r.file_path for r in report.loaded) == sorted(f"exports/{n}" for n in HOSTILE_NAMES)
    stored = {r[0] for r in con.execute("SELECT file_path FROM raw.customs_loads").fetchall()}
    assert stored == {f"exports/{n}" for n in HOSTILE_NAMES}
    assert con.execute("SELECT count(*) FROM raw.customs_rows").fetchone()[0] == len(HOSTILE_NAMES)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_symlinks_out_of_the_landing_dir_are_not_read(gate, tmp_path):
    settings, con = gate
    secret = tmp_path / "outside" / "secret_202506.csv"
    _write_without_period_column(secret, partner="502")
    (settings.landing_dir / "exports").mkdir(parents=True)
    os.symlink(secret, settings.landing_dir / "exports" / "link_202506.csv")
    os.symlink(secret.parent, settings.landing_dir / "exports" / "linked_dir")  # not followed
    report = ingest_landing(con, settings.landing_dir, settings.staging_dir)
    assert [r.file_path for r in report.rejected] == ["exports/link_202506.csv"]
    assert "outside the landing directory" in report.rejected[0].reason
    assert report.rejected[0].file_sha256 is None  # refused before a byte was read
    assert report.loaded == []
    assert con.execute("SELECT count(*) FROM raw.customs_rows").fetchone()[0] == 0


def test_run_config_cannot_name_files_outside_the_landing_dir(gate, tmp_path):
    settings, con = gate
    _write_without_period_column(tmp_path / "outside_202506.csv", partner="502")
    _write_without_period_column(settings.landing_dir / "exports" / "ok_202506.csv", partner="304")
    report = ingest_landing(con, settings.landing_dir, settings.staging_dir,
                            only=["../outside_202506.csv", str(tmp_path / "outside_202506.csv"), "exports/ok_202506.csv"])
    assert [r.file_path for r in report.loaded] == ["exports/ok_202506.csv"]
    assert report.rejected == []


def test_a_huge_file_is_refused_without_reading_it(gate):
    settings, con = gate
    huge = settings.landing_dir / "exports" / "huge_202506.csv"
    huge.parent.mkdir(parents=True)
    with huge.open("wb") as handle:  # a sparse 2 GB file: no disk, no memory
        handle.truncate(2 * 1024**3)
    report = ingest_landing(con, settings.landing_dir, settings.staging_dir)
    assert len(report.rejected) == 1 and "larger than" in report.rejected[0].reason
    assert report.rejected[0].file_sha256 is None


def test_a_ten_megabyte_line_is_rejected_with_a_reason(gate):
    settings, con = gate
    path = settings.landing_dir / "exports" / "longline_202506.csv"
    write_extract(path, [magnet_row("", "502", 1000, 50_000, commodity_name="x" * (10 * 1024 * 1024))],
                  order=("hs8", "commodity_name", "partner_code", "partner_name", "quantity", "unit", "value"))
    report = ingest_landing(con, settings.landing_dir, settings.staging_dir)
    assert len(report.rejected) == 1
    reason = report.rejected[0].reason
    assert "line" in reason.lower()
    assert con.execute("SELECT count(*) FROM raw.customs_rows").fetchone()[0] == 0
