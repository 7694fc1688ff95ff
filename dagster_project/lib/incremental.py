"""Which months a build must rebuild: the periods of loads dbt has not built yet.

A load only changes the facts of its own periods (the revision key contains the period), so
an incremental dbt build replaces those months in the history, the monthly facts and the
fact table; growth metrics also change for the months that compare with them (next month,
the same month next year, and the year-to-date figures after them).
"""

from __future__ import annotations

import datetime as dt

import duckdb

HISTORY_TABLE = ("intermediate", "int_customs_facts_history")


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = $s AND table_name = $t", {"s": schema, "t": table}
    ).fetchone()[0])


def unbuilt_loads(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT load_id FROM raw.customs_loads ANTI JOIN raw.customs_loads_built USING (load_id) ORDER BY load_seq"
    ).fetchall()]


def months_to_build(con: duckdb.DuckDBPyConnection) -> list[dt.date] | None:
    """Periods of the loads no successful dbt build has included yet; None means build everything.

    The watermark (raw.customs_loads_built) only moves after a dbt build succeeded, so a build
    that failed or was killed half-way is redone from the same months next time.
    """
    never_built = con.execute("SELECT count(*) = 0 FROM raw.customs_loads_built").fetchone()[0]
    if never_built or not _table_exists(con, *HISTORY_TABLE):
        return None
    rows = con.execute(
        """SELECT DISTINCT period_start FROM raw.customs_rows
           WHERE load_id IN (SELECT load_id FROM raw.customs_loads ANTI JOIN raw.customs_loads_built USING (load_id))
           ORDER BY 1"""
    ).fetchall()
    return [r[0] for r in rows]


def mark_built(con: duckdb.DuckDBPyConnection, load_ids: list[str], run_id: str | None) -> None:
    if load_ids:
        con.executemany(
            "INSERT OR IGNORE INTO raw.customs_loads_built VALUES (?, now()::TIMESTAMP, ?)",
            [(load_id, run_id) for load_id in load_ids],
        )


def _add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def growth_months(months: list[dt.date]) -> list[dt.date]:
    """Months whose growth metrics depend on `months`: each month through December of the next year."""
    out: set[dt.date] = set()
    for month in months:
        end = dt.date(month.year + 1, 12, 1)
        current = month
        while current <= end:
            out.add(current)
            current = _add_months(current, 1)
    return sorted(out)


def dbt_vars(months: list[dt.date] | None) -> dict | None:
    if months is None:
        return None
    return {
        "months": [m.strftime("%Y-%m-01") for m in months],
        "growth_months": [m.strftime("%Y-%m-01") for m in growth_months(months)],
    }
