"""Which landing files are loaded already: what raw.customs_loads holds, and what this run adds."""

from __future__ import annotations

import datetime as dt

import duckdb

from dagster_project.lib.ingest.landing_files import LandingFile, period_from_name


class PreviousLoads:
    """What raw.customs_loads (or `table`: raw.comtrade_loads) already holds, to tell new files and
    releases from repeats."""

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str = "raw.customs_loads"):
        self.latest_sha: dict[str, str] = {}  # path -> content of its latest load
        self.by_sha: dict[str, list[tuple[str, str, dt.date, dt.date]]] = {}  # content -> (path, period source, start, end)
        self.times: dict[tuple[str, str], int] = {}  # (path, content) -> loads
        for row in con.execute(
            f"SELECT file_path, file_sha256, period_source, period_start, period_end FROM {table} ORDER BY load_seq"
        ).fetchall():
            self.add(*row)

    def add(self, path: str, sha: str, source: str | None, start: dt.date | None, end: dt.date | None) -> None:
        self.latest_sha[path] = sha
        self.by_sha.setdefault(sha, []).append((path, source, start, end))
        self.times[(path, sha)] = self.times.get((path, sha), 0) + 1

    def same_download(self, lf: LandingFile, sha: str) -> str | None:
        """The path this very download was loaded from, or None when the file is new or a new release.

        A path is read again whenever its content differs from its latest load, even if it goes
        back to an earlier version: the landing directory says what the latest release is. The
        same bytes under another name are the same download, unless the period came from the file
        name: two months can have byte-identical downloads, and then the name is part of the data.
        """
        if lf.rel in self.latest_sha:
            return lf.rel if self.latest_sha[lf.rel] == sha else None
        for path, source, start, end in self.by_sha.get(sha, []):
            if source != "file name" or period_from_name(lf.path.name) == (start, end):
                return path
        return None
