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
class IngestReport:
    loaded: list[LoadResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already loaded (this path and content, or this content)
    rejected: list[Rejection] = field(default_factory=list)
    duplicate_of: dict[str, str] = field(default_factory=dict)  # skipped path -> the path its content was loaded from
    batched: int = 0  # of the loaded files, how many went in many-per-statement (the rest one by one)
    hashed: int = 0  # files whose SHA-256 was computed (the others' were known from an earlier build)

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
        report.rejected.append(rejection)
        key = (rejection.file_path, rejection.file_sha256, rejection.reason)
        if key not in self.recorded:
            self.con.execute(
                "INSERT INTO audit.rejected_files VALUES ($p, $s, $r, $t, $run)",
                {"p": rejection.file_path, "s": rejection.file_sha256, "r": rejection.reason,
                 "t": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), "run": self.run_id},
            )
            self.recorded.add(key)
