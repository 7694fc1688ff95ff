"""Which months a build must rebuild: those loaded since their month was last built.

The ingest writes which months each load holds (raw.customs_load_months: the file -> months
mapping is data). Dagster records when each month partition was last built (the caller reads
it: dagster_project/defs/jobs.py). A month is rebuilt when a load of it is newer than its last
build, so a build that failed or was killed is redone from the same months by the next one.
A load changes the facts of its own months (the revision key holds the period) and, as a new
version of a file, those of the months its previous version held; growth metrics of later
months follow in dbt (macros/incremental_months.sql).
"""

from __future__ import annotations

import datetime as dt
from typing import Mapping

import duckdb

# A month changes with every load that holds it, and with every new version of a file that held
# it before: the new version replaces the old one's whole content, so a month the old version
# covered and the new one does not loses those figures (int_customs_facts_history).
LATEST_LOAD_BY_MONTH_SQL = """
WITH next_version AS (
    SELECT load_id, lead(loaded_at) OVER (PARTITION BY file_path ORDER BY load_seq) AS loaded_at
    FROM raw.customs_loads
),
touched AS (
    SELECT m.month, l.loaded_at FROM raw.customs_load_months m JOIN raw.customs_loads l USING (load_id)
    UNION ALL
    SELECT m.month, v.loaded_at FROM raw.customs_load_months m JOIN next_version v USING (load_id)
    WHERE v.loaded_at IS NOT NULL
)
SELECT month, epoch(max(loaded_at))   -- loaded_at is UTC
FROM touched
GROUP BY month
"""


def latest_load_by_month(con: duckdb.DuckDBPyConnection) -> dict[dt.date, float]:
    """Each loaded month, with the Unix time of its latest load."""
    return dict(con.execute(LATEST_LOAD_BY_MONTH_SQL).fetchall())


def loaded_month_span(con: duckdb.DuckDBPyConnection) -> tuple[dt.date, dt.date] | None:
    """The first and last loaded month; None before the first load."""
    first, last = con.execute("SELECT min(month), max(month) FROM raw.customs_load_months").fetchone()
    return None if first is None else (first, last)


def months_to_build(latest_load: Mapping[dt.date, float], built_at: Mapping[dt.date, float]) -> list[dt.date]:
    """The loaded months never built, or built before their latest load."""
    return sorted(m for m, loaded in latest_load.items() if m not in built_at or built_at[m] < loaded)


def missing_relations(con: duckdb.DuckDBPyConnection, relations: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (schema, name) among `relations` that are neither a table nor a view of the warehouse."""
    present = set(con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL SELECT schema_name, view_name FROM duckdb_views()"
    ).fetchall())
    return [r for r in relations if r not in present]
