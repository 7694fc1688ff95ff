"""What an ingest did: the files it loaded, skipped and rejected (the Dagster asset reports it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from dagster_project.lib.ingest.load_record import LoadResult


@dataclass
class Rejection:
    file_path: str
    file_sha256: str | None
    reason: str


@dataclass
class Deferral:
    """A file left for the next run (still being written, or changed during this one): not a rejection."""

    file_path: str
    reason: str


# A reason names the first rows at fault and counts the rest; this bounds whatever else it holds.
MAX_REASON_CHARS = 2000


def bounded(reason: str, limit: int = MAX_REASON_CHARS) -> str:
    if len(reason) <= limit:
        return reason
    cut = len(reason) - limit
    return f"{reason[:limit].rstrip()}… ({cut:,} more characters)"


@dataclass
class IngestReport:
    loaded: list[LoadResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already loaded (this path and content, or this content)
    rejected: list[Rejection] = field(default_factory=list)
    duplicate_of: dict[str, str] = field(default_factory=dict)  # skipped path -> the path its content was loaded from
    batched: int = 0  # of the loaded files, how many went in many-per-statement (the rest one by one)
    hashed: int = 0  # files whose SHA-256 was computed (the others' were known from an earlier build)
    deferred: list[Deferral] = field(default_factory=list)  # not settled: read by a later run
    temporary: list[str] = field(default_factory=list)  # temporary download names, never read
    settle_wait_seconds: float = 0.0  # time spent waiting for just-modified files to settle
    mirror_loaded: list[LoadResult] = field(default_factory=list)  # UN Comtrade files (raw.comtrade_loads)

    @property
    def rows_loaded(self) -> int:
        return sum(r.row_count for r in self.loaded)


class RejectionLog:
    """audit.rejected_files: each (file, content, reason) once, however many builds meet it."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str | None):
        self.con = con
        self.run_id = run_id
        self.recorded = {
            tuple(r) for r in con.execute("SELECT file_path, file_sha256, reason FROM audit.rejected_files").fetchall()
        }

    def record(self, report: IngestReport, rejection: Rejection) -> None:
        rejection.reason = bounded(rejection.reason)
        report.rejected.append(rejection)
        key = (rejection.file_path, rejection.file_sha256, rejection.reason)
        if key not in self.recorded:
            self.con.execute(
                "INSERT INTO audit.rejected_files VALUES ($p, $s, $r, $t, $run)",
                {"p": rejection.file_path, "s": rejection.file_sha256, "r": rejection.reason,
                 "t": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), "run": self.run_id},
            )
            self.recorded.add(key)
