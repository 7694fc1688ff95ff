"""Which months a build must rebuild: the periods of loads dbt has not built yet.

A load only changes the facts of its own periods (the revision key contains the period), so
an incremental dbt build replaces those months in the history, the monthly facts and the
fact table; growth metrics also change for the months that compare with them (next month,
the same month next year, and the year-to-date figures after them).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project.lib.quality.checks import Scope
from dagster_project.lib.warehouse.database import table_exists
from dagster_project.lib.quality.checks import month_label as month_ranges  # noqa: F401 - '2023-11..2024-01, 2025-06'

HISTORY_TABLE = ("intermediate", "int_customs_facts_history")


def unbuilt_loads(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT load_id FROM raw.customs_loads ANTI JOIN raw.customs_loads_built USING (load_id) ORDER BY load_seq"
    ).fetchall()]


@functools.lru_cache(maxsize=4)
def _monthly_relations(manifest_path: Path) -> tuple[tuple[str, str], ...]:
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return (HISTORY_TABLE,)
    return monthly_relations(manifest)


def is_monthly_model(node: dict) -> bool:
    """A dbt node rebuilt month by month: an incremental model (partitioned by month in Dagster)."""
    return node["resource_type"] == "model" and node.get("config", {}).get("materialized") == "incremental"


def monthly_relations(manifest: dict) -> tuple[tuple[str, str], ...]:
    """(schema, table) of the dbt models rebuilt month by month."""
    return tuple(sorted(
        (n["schema"], n.get("alias") or n["name"]) for n in manifest["nodes"].values() if is_monthly_model(n)
    ))


def missing_monthly_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The month-by-month tables of the project's manifest that the warehouse lacks: a model added
    to the project since the last build (or a table dropped by hand)."""
    from dagster_project.lib.settings import dbt_target_dir

    return [f"{s}.{t}" for s, t in _monthly_relations(dbt_target_dir() / "manifest.json") if not table_exists(con, s, t)]


def every_month_reason(con: duckdb.DuckDBPyConnection) -> str | None:
    """Why the next build must build every month, or None: no dbt build has succeeded on this
    warehouse yet, or a month-by-month table is missing (its history gone, or a model new to the
    project: an incremental build of the other months would leave it empty, and the views on it
    would fail)."""
    if con.execute("SELECT count(*) = 0 FROM raw.customs_loads_built").fetchone()[0]:
        return "first build"
    missing = missing_monthly_tables(con)
    return f"{', '.join(missing)} not built yet" if missing else None


def is_first_build(con: duckdb.DuckDBPyConnection) -> bool:
    """Build every month (see every_month_reason)."""
    return every_month_reason(con) is not None


def _unbuilt_months(con: duckdb.DuckDBPyConnection) -> list[dt.date]:
    """Periods of the loads no successful dbt build has included yet.

    The watermark (raw.customs_loads_built) only moves after a dbt build succeeded, so a build
    that failed or was killed half-way is redone from the same months next time.
    """
    first, last = con.execute(
        "SELECT min(period_start), max(period_end) FROM raw.customs_loads ANTI JOIN raw.customs_loads_built USING (load_id)"
    ).fetchone()
    if first is None:
        return []
    # A load's period is the span of its rows (lib/ingest.py): bounding the scan by it lets DuckDB
    # skip the row groups of other months instead of reading every load id of the history.
    rows = con.execute(
        """SELECT DISTINCT period_start FROM raw.customs_rows
           WHERE period_start BETWEEN $first AND $last
             AND load_id IN (SELECT load_id FROM raw.customs_loads ANTI JOIN raw.customs_loads_built USING (load_id))
           ORDER BY 1""",
        {"first": first, "last": last},
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


# --------------------------------------------------------------------------- dbt's environment
# The months reach dbt as environment variables read at execution (dbt/macros/incremental_months.sql),
# not as --vars: dbt re-parses the whole project whenever --vars change.
MONTHS_ENV = "CUSTOMS_DBT_MONTHS"
GROWTH_MONTHS_ENV = "CUSTOMS_DBT_GROWTH_MONTHS"


def dbt_env(variables: dict | None) -> dict[str, str]:
    """The environment of an incremental dbt build ({} builds and tests every month)."""
    if variables is None:
        return {}
    return {MONTHS_ENV: json.dumps(variables["months"]), GROWTH_MONTHS_ENV: json.dumps(variables["growth_months"])}


# --------------------------------------------------------------------------- what the gate verifies
# Every dbt build records which months it rewrote; the quality gate of the same run checks those
# months (and the windows its checks need) and, once it passed, clears them. A gate that failed
# leaves them for the next run, so months built by a run whose gate failed are checked again
# until a gate passes; a build of every month makes the next gate check everything.
SCOPE_DDL = """
CREATE TABLE IF NOT EXISTS raw.months_to_verify (
    dagster_run_id VARCHAR,
    recorded_at    TIMESTAMP NOT NULL,
    all_months     BOOLEAN NOT NULL,   -- the build rewrote every month
    months         DATE[],             -- facts rebuilt (var months)
    growth_months  DATE[]              -- growth metrics rebuilt (var growth_months)
)
"""


def record_months_to_verify(con: duckdb.DuckDBPyConnection, run_id: str | None, variables: dict | None) -> None:
    con.execute(SCOPE_DDL)
    con.execute(
        "INSERT INTO raw.months_to_verify VALUES ($run, now()::TIMESTAMP, $all, $months, $growth)",
        {
            "run": run_id,
            "all": variables is None,
            "months": None if variables is None else [dt.date.fromisoformat(m) for m in variables["months"]],
            "growth": None if variables is None else [dt.date.fromisoformat(m) for m in variables["growth_months"]],
        },
    )


def scope_to_verify(con: duckdb.DuckDBPyConnection, run_id: str | None) -> Scope | None:
    """The months this run's gate checks; None means every month.

    Every month when this run built nothing (a gate run on its own, e.g. 'Execute checks' in
    the UI, checks the whole warehouse) or when some unverified build rewrote every month.
    """
    if not table_exists(con, "raw", "months_to_verify"):
        return None
    this_run = con.execute("SELECT count(*) FROM raw.months_to_verify WHERE dagster_run_id = $r", {"r": run_id}).fetchone()[0]
    if not run_id or not this_run:
        return None
    everything, months, growth = con.execute(
        """SELECT bool_or(all_months),
                  list_sort(list_distinct(flatten(list(coalesce(months, []))))),
                  list_sort(list_distinct(flatten(list(coalesce(growth_months, [])))))
           FROM raw.months_to_verify"""
    ).fetchone()
    if everything:
        return None
    return Scope(tuple(months or ()), tuple(growth or ()))


def verified(con: duckdb.DuckDBPyConnection) -> None:
    """The gate passed: what was built so far is verified."""
    if table_exists(con, "raw", "months_to_verify"):
        con.execute("DELETE FROM raw.months_to_verify")


# --------------------------------------------------------------------------- what a build may skip
# Seeds, views, the tables built from seeds alone (dim_partner, dim_commodity), their tests and the
# unit tests depend on the dbt project's files, not on the loads. An incremental build leaves them
# out when the project's files are byte for byte those of the last build that built them.
STATIC_DDL = """
CREATE TABLE IF NOT EXISTS raw.dbt_static_build (
    fingerprint    VARCHAR NOT NULL,   -- SHA-256 of the dbt project's files
    built_at       TIMESTAMP NOT NULL,
    dagster_run_id VARCHAR
)
"""
PROJECT_FILE_DIRS = ("models", "macros", "seeds", "tests", "snapshots")
PROJECT_FILES = ("dbt_project.yml", "profiles.yml")


def project_fingerprint(project_dir: Path) -> str:
    digest = hashlib.sha256()
    paths = [project_dir / name for name in PROJECT_FILES if (project_dir / name).is_file()]
    for folder in PROJECT_FILE_DIRS:
        if (project_dir / folder).is_dir():
            paths += sorted(p for p in (project_dir / folder).rglob("*") if p.is_file())
    for path in paths:
        digest.update(path.relative_to(project_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class StaticNodes:
    """dbt nodes whose result depends on the project's files only."""

    names: tuple[str, ...]  # seeds, views, seed-only tables, tests of seed-only nodes (dbt node names)
    relations: tuple[tuple[str, str], ...]  # (schema, name) of the seeds, views and tables among them


def static_nodes(manifest: dict) -> StaticNodes:
    nodes = manifest["nodes"]
    parents = manifest.get("parent_map", {})
    seeds = {uid for uid, n in nodes.items() if n["resource_type"] == "seed"}
    models = {uid: n for uid, n in nodes.items() if n["resource_type"] == "model"}

    from_files: set[str] = set(seeds)  # nodes whose data comes from the project's files alone
    changed = True
    while changed:
        changed = False
        for uid, node in models.items():
            ups = parents.get(uid, node.get("depends_on", {}).get("nodes", []))
            if uid not in from_files and ups and all(u in from_files for u in ups):
                from_files.add(uid)
                changed = True
    views = {uid for uid, n in models.items() if n["config"].get("materialized") == "view"}
    tests = {
        uid for uid, n in nodes.items()
        if n["resource_type"] == "test" and n.get("depends_on", {}).get("nodes")
        and all(u in from_files for u in n["depends_on"]["nodes"])
    }
    built = from_files | views
    names = tuple(sorted(nodes[uid]["name"] for uid in built | tests))
    relations = tuple(sorted((nodes[uid]["schema"], nodes[uid].get("alias") or nodes[uid]["name"]) for uid in built))
    return StaticNodes(names, relations)


def static_nodes_current(con: duckdb.DuckDBPyConnection, fingerprint: str, nodes: StaticNodes) -> bool:
    """True when the last build of the static nodes had these project files and they all still exist."""
    if not table_exists(con, "raw", "dbt_static_build"):
        return False
    last = con.execute("SELECT fingerprint FROM raw.dbt_static_build ORDER BY built_at DESC LIMIT 1").fetchone()
    if not last or last[0] != fingerprint:
        return False
    present = {
        (s, t) for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL SELECT schema_name, view_name FROM duckdb_views()"
        ).fetchall()
    }
    return all(r in present for r in nodes.relations)


def record_static_build(con: duckdb.DuckDBPyConnection, fingerprint: str, run_id: str | None) -> None:
    con.execute(STATIC_DDL)
    con.execute("DELETE FROM raw.dbt_static_build")
    con.execute("INSERT INTO raw.dbt_static_build VALUES ($f, now()::TIMESTAMP, $r)", {"f": fingerprint, "r": run_id})


# --------------------------------------------------------------------------- month partitions
# A Dagster run of month partitions rebuilds the months of its partition range, which need not
# be every month of the loads not built yet (the UI can re-run one month; an automatic build runs
# one range of months after another). Each load's months are recorded as they are built; a load
# is built (raw.customs_loads_built) once every month of its rows has been built by some run.
LOAD_MONTHS_DDL = """
CREATE TABLE IF NOT EXISTS raw.customs_load_months_built (
    load_id        VARCHAR NOT NULL,
    month          DATE NOT NULL,      -- a period_start of the load's rows
    built_at       TIMESTAMP NOT NULL,
    dagster_run_id VARCHAR,
    PRIMARY KEY (load_id, month)
)
"""


def loaded_months(con: duckdb.DuckDBPyConnection) -> list[dt.date]:
    """Every month (period_start) of the loaded rows."""
    return [r[0] for r in con.execute("SELECT DISTINCT period_start FROM raw.customs_rows ORDER BY 1").fetchall()]


def months_pending(con: duckdb.DuckDBPyConnection) -> tuple[list[dt.date], str | None]:
    """The months a build must rebuild next, and why it must build every month (None: just these)."""
    reason = every_month_reason(con)
    if reason is not None:
        return loaded_months(con), reason
    return _unbuilt_months(con), None


def mark_months_built(con: duckdb.DuckDBPyConnection, load_ids: list[str], months: list[dt.date], run_id: str | None) -> list[str]:
    """Record that `months` of these loads are built; mark built, and return, the loads now built in every month."""
    if not load_ids:
        return []
    con.execute(LOAD_MONTHS_DDL)
    params = {"ids": load_ids, "months": months, "run": run_id}
    if months:
        con.execute(
            """INSERT OR IGNORE INTO raw.customs_load_months_built
               SELECT DISTINCT load_id, period_start, now()::TIMESTAMP, $run FROM raw.customs_rows
               WHERE period_start BETWEEN $first AND $last
                 AND load_id IN (SELECT unnest($ids)) AND period_start IN (SELECT unnest($months))""",
            {**params, "first": min(months), "last": max(months)},
        )
    # bounded by the loads' periods (the span of their rows): DuckDB skips the row groups of other
    # months instead of reading every load id of the history (0.4 s at 10 national years)
    first, last = con.execute(
        "SELECT min(period_start), max(period_end) FROM raw.customs_loads WHERE list_contains($ids, load_id)",
        {"ids": load_ids},
    ).fetchone()
    complete = [r[0] for r in con.execute(
        """SELECT load_id FROM (SELECT unnest($ids) AS load_id)
           EXCEPT
           SELECT DISTINCT r.load_id FROM raw.customs_rows r
           ANTI JOIN raw.customs_load_months_built b ON b.load_id = r.load_id AND b.month = r.period_start
           WHERE r.load_id IN (SELECT unnest($ids)) AND r.period_start BETWEEN $first AND $last""",
        {"ids": load_ids, "first": first, "last": last},
    ).fetchall()]
    mark_built(con, complete, run_id)
    return sorted(complete)
