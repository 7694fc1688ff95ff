"""audit.check_results: every check outcome of every run, queryable next to the data."""

from __future__ import annotations

import datetime as dt
from typing import Iterable, Sequence

import duckdb


def record_check_results(con: duckdb.DuckDBPyConnection, run_id: str, results: Iterable[Sequence]) -> int:
    """Append (check_name, asset_key, severity, passed, observed, description[, failing_sample]) rows."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    rows = []
    for result in results:
        name, asset_key, severity, passed, observed, description, *rest = result
        rows.append((run_id, name, asset_key, severity, bool(passed), observed, now, description, rest[0] if rest else None))
    if rows:
        con.executemany("INSERT INTO audit.check_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)
