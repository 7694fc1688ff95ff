"""The corpus through the ingest gate itself (no Dagster, no dbt): fast, one case at a time.

Each case's files are written to a landing directory of their own and loaded into a fresh
working copy with `ingest_landing`; the test checks rows loaded (and what the load records),
or the rejection with its reason (naming line, row and column), that nothing of a rejected
file reached raw.*, and that the landing directory is byte for byte what it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path

import duckdb
import pytest

from corpus.build_corpus import (
    CASES,
    REVISED_IN_PLACE,
    REVISION_V1,
    REVISION_V2,
    Expect,
    build_corpus,
    revise_in_place,
    write_case,
)
from dagster_project.lib.ingest.landing import ingest_landing
from dagster_project.lib.ingest.landing_files import load_id_for
from dagster_project.lib.ingest.report import IngestReport
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse.working_copy import ensure_working_copy

TODAY = dt.date(2026, 1, 15)  # every corpus month is over; the "future" cases are relative to it
ALL = CASES(TODAY)


def snapshot(landing: Path) -> dict[str, tuple]:
    """Every entry under the landing directory: content hash, size and mtime of files; dirs too."""
    seen = {}
    for root, dirs, files in os.walk(landing):
        for name in dirs:
            seen[os.path.relpath(os.path.join(root, name), landing)] = ("dir",)
        for name in files:
            path = Path(root) / name
            stat = path.stat()
            seen[path.relative_to(landing).as_posix()] = (hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_size, stat.st_mtime_ns)
    return seen


class Gate:
    """A landing directory and a working copy of a test's own."""

    def __init__(self, root: Path):
        self.landing = root / "landing"
        self.landing.mkdir(parents=True, exist_ok=True)
        self.settings = Settings(landing_dir=self.landing, warehouse_path=root / "wh" / "warehouse.duckdb")
        ensure_working_copy(self.settings)
        self.con = duckdb.connect(str(self.settings.working_path))

    def ingest(self, today: dt.date = TODAY) -> IngestReport:
        return ingest_landing(self.con, self.landing, self.settings.staging_dir, today=today)

    def rows(self, sql: str, params=None) -> list[tuple]:
        return self.con.execute(sql, params or {}).fetchall()

    def scalar(self, sql: str, params=None):
        return self.con.execute(sql, params or {}).fetchone()[0]

    def close(self):
        self.con.close()


@pytest.fixture
def gate(tmp_path):
    g = Gate(tmp_path)
    yield g
    g.close()


def _names(reason: str, word: str, number: int) -> bool:
    """'line 3', 'lines 2, 4', 'row 2 (line 3)', 'rows 1, 3' ... name `number`."""
    return re.search(rf"\b{word}s? (?:\d+, )*{number}\b", reason) is not None


def assert_outcome(gate: Gate, report: IngestReport, e: Expect) -> None:
    loaded = {r.file_path: r for r in report.loaded}
    rejected = {r.file_path: r for r in report.rejected}
    sha = hashlib.sha256((gate.landing / e.rel).read_bytes()).hexdigest()
    raw_rows = gate.scalar("SELECT count(*) FROM raw.customs_rows WHERE source_file = $p", {"p": e.rel})
    loads = gate.rows("SELECT * FROM raw.customs_loads WHERE file_path = $p", {"p": e.rel})
    audit = gate.rows("SELECT file_sha256, reason, rejected_at FROM audit.rejected_files WHERE file_path = $p", {"p": e.rel})

    if e.outcome == "loaded":
        assert e.rel in loaded, f"{e.rel} not loaded: {rejected.get(e.rel)}"
        assert loaded[e.rel].row_count == e.rows
        assert raw_rows == e.rows and len(loads) == 1 and audit == []
        load = gate.con.execute("SELECT * FROM raw.customs_loads WHERE file_path = $p", {"p": e.rel}).fetchdf().iloc[0]
        assert load["file_sha256"] == sha and load["row_count"] == e.rows
        for column, expected in e.load.items():
            actual = load[column]
            if isinstance(expected, dt.date):
                actual = actual.date()
            assert actual == expected, f"{e.rel}: raw.customs_loads.{column} = {actual!r}, expected {expected!r}"
        warnings = load["warnings"]
        if e.warnings:
            for text in e.warnings:
                assert text in (warnings or ""), f"{e.rel}: warning {text!r} missing from {warnings!r}"
        else:
            assert warnings is None, f"{e.rel}: unexpected warnings {warnings!r}"
        for sql, expected in e.checks:
            assert gate.rows(sql, {"rel": e.rel} if "$rel" in sql else None) == expected, sql
    elif e.outcome == "skipped":
        assert e.rel in report.skipped and e.rel in report.duplicate_of
        assert raw_rows == 0 and loads == [] and audit == []
    else:
        assert e.rel in rejected, f"{e.rel} was not rejected (loaded: {e.rel in loaded})"
        reason = rejected[e.rel].reason
        for text in e.reject:
            assert text in reason, f"{e.rel}: {text!r} not in reason {reason!r}"
        if e.line is not None:
            assert _names(reason, "line", e.line), f"{e.rel}: line {e.line} not named in {reason!r}"
        if e.row is not None:
            assert _names(reason, "row", e.row), f"{e.rel}: row {e.row} not named in {reason!r}"
        if e.column is not None:
            assert f"'{e.column}'" in reason, f"{e.rel}: column {e.column!r} not named in {reason!r}"
        # recorded once, with the file's hash, and nothing of it loaded
        assert len(audit) == 1 and audit[0][0] == sha and audit[0][1] == reason and audit[0][2] is not None
        assert raw_rows == 0 and loads == []


def assert_consistent(gate: Gate) -> None:
    """Nothing half-loaded anywhere: rows and loads agree, and no staging file is left behind."""
    assert gate.scalar("SELECT count(*) FROM raw.customs_rows") == gate.scalar("SELECT coalesce(sum(row_count), 0) FROM raw.customs_loads")
    assert gate.scalar("SELECT count(*) FROM raw.customs_rows r ANTI JOIN raw.customs_loads l USING (load_id)") == 0
    assert gate.scalar("SELECT count(*) FROM raw.customs_loads l ANTI JOIN raw.customs_rows r USING (load_id)") == 0
    # the file -> months mapping: each load's row months, written with its rows
    months = gate.rows("SELECT load_id, month FROM raw.customs_load_months ORDER BY ALL")
    assert months == gate.rows("SELECT DISTINCT load_id, period_start FROM raw.customs_rows ORDER BY ALL")
    staging = gate.settings.staging_dir
    assert not staging.exists() or list(staging.iterdir()) == []


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_case(case, gate):
    write_case(gate.landing, case)
    before = snapshot(gate.landing)
    report = gate.ingest()
    for expect in case.expects:
        assert_outcome(gate, report, expect)
    assert len(report.loaded) + len(report.rejected) + len(report.skipped) == len(case.expects)
    assert_consistent(gate)
    assert snapshot(gate.landing) == before, "the landing directory was modified"


def test_the_corpus_is_big_enough_and_covers_the_issue():
    files = [e for c in ALL for e in c.expects]
    assert len(files) >= 25 and len({e.rel for e in files}) == len(files)
    assert sum(e.outcome == "rejected" for e in files) >= 15 and sum(e.outcome == "loaded" for e in files) >= 15
    names = {c.name for c in ALL}
    for required in (
        "gb18030_zh", "gbk_zh", "utf8_zh", "utf8_bom_zh", "en_supplementary", "en_supplimentary", "shuffled_unquoted",
        "regime_zh", "province_en", "named_single_month", "named_range_cumulative", "jan_feb_combined", "no_period_anywhere",
        "exactly_10000_rows", "revised_by_later_file", "revised_in_place", "same_file_twice", "truncated_mid_row",
        "empty_file", "header_only", "tonnes_for_kg_code", "pieces_for_kg_code", "usd_and_cny_same_month",
        "non_numeric_quantity", "negative_quantity", "duplicate_keys", "future_period_column", "binary_xlsx", "invalid_bytes",
        "world_total_zh", "world_total_en", "province_only_zh", "province_only_en", "regime_only_en", "no_commodity_column",
    ):
        assert required in names, required


def test_the_whole_corpus_in_one_landing_dir(gate):
    """Every file meets the same fate when loaded with all the others; a second run adds nothing."""
    cases = build_corpus(gate.landing, TODAY)
    before = snapshot(gate.landing)
    report = gate.ingest()
    for case in cases:
        for expect in case.expects:
            assert_outcome(gate, report, expect)
    assert_consistent(gate)
    loads, rows, rejections = (gate.scalar(f"SELECT count(*) FROM {t}") for t in
                               ("raw.customs_loads", "raw.customs_rows", "audit.rejected_files"))

    again = gate.ingest()
    assert again.loaded == [] and len(again.rejected) == len(report.rejected)
    assert len(again.skipped) == len(report.loaded) + len(report.skipped)
    assert (gate.scalar("SELECT count(*) FROM raw.customs_loads"), gate.scalar("SELECT count(*) FROM raw.customs_rows"),
            gate.scalar("SELECT count(*) FROM audit.rejected_files")) == (loads, rows, rejections)
    assert snapshot(gate.landing) == before


def test_a_file_changed_in_place_is_a_new_load_that_supersedes(gate):
    case = next(c for c in ALL if c.name == "revised_in_place")
    write_case(gate.landing, case)
    first = gate.ingest()
    assert [r.file_path for r in first.loaded] == [REVISED_IN_PLACE]
    revise_in_place(gate.landing)
    second = gate.ingest()
    assert [r.file_path for r in second.loaded] == [REVISED_IN_PLACE]
    assert first.loaded[0].load_id != second.loaded[0].load_id  # same name, new hash: a new load
    by_load = gate.rows(
        """SELECT l.load_seq, r.partner_code, r.quantity FROM raw.customs_rows r JOIN raw.customs_loads l USING (load_id)
           WHERE r.source_file = $p ORDER BY 1, 2""",
        {"p": REVISED_IN_PLACE},
    )
    seqs = sorted({s for s, _, _ in by_load})
    assert len(seqs) == 2
    assert {p: q for s, p, q in by_load if s == seqs[0]} == REVISION_V1
    assert {p: q for s, p, q in by_load if s == seqs[1]} == REVISION_V2  # the later load is the latest word
    assert gate.ingest().loaded == []  # and it is not loaded a third time

    # changed back to the first version: a new release again (the landing directory is the truth)
    write_case(gate.landing, case)
    third = gate.ingest()
    assert [r.file_path for r in third.loaded] == [REVISED_IN_PLACE]
    assert third.loaded[0].load_id not in (first.loaded[0].load_id, second.loaded[0].load_id)
    latest = gate.rows(
        """SELECT r.partner_code, r.quantity FROM raw.customs_rows r JOIN raw.customs_loads l USING (load_id)
           WHERE r.source_file = $p QUALIFY l.load_seq = max(l.load_seq) OVER () ORDER BY 1""",
        {"p": REVISED_IN_PLACE},
    )
    assert dict(latest) == REVISION_V1
    assert gate.ingest().loaded == []
    assert_consistent(gate)


def test_a_failure_inside_the_load_transaction_leaves_nothing_behind(gate):
    """Rows are inserted before the load record; if the latter fails, the rows go too, and the file is rejected."""
    case = next(c for c in ALL if c.name == "gb18030_zh")
    write_case(gate.landing, case)
    rel = case.expects[0].rel
    sha = hashlib.sha256((gate.landing / rel).read_bytes()).hexdigest()
    # a load record squatting on the load id (primary key) makes the second insert fail
    gate.con.execute(
        """INSERT INTO raw.customs_loads VALUES ($id, 0, 'elsewhere.csv', 'not-this-file', 0, 'exports', 'utf-8', 'zh', 'USD',
           'hs8,partner', 'column', DATE '2000-01-01', DATE '2000-01-01', 0, NULL, NULL, NULL, TIMESTAMP '2000-01-01')""",
        {"id": load_id_for(rel, sha)},
    )
    report = gate.ingest()
    assert report.loaded == [] and [r.file_path for r in report.rejected] == [rel]
    assert "could not be read" in report.rejected[0].reason
    assert gate.scalar("SELECT count(*) FROM raw.customs_rows") == 0
    assert gate.scalar("SELECT count(*) FROM raw.customs_load_months") == 0
    assert gate.scalar("SELECT count(*) FROM audit.rejected_files WHERE file_path = $p", {"p": rel}) == 1
