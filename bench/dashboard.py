#!/usr/bin/env python3
"""What a dashboard waits for: one code's whole monthly series, read from the served file (issue 17).

    dashboard.py WAREHOUSE.duckdb SCRATCH_DIR [--hs8 85051110] [--partners 5] [--repeats 3]

The query a BI chart of one code sends: its every month, to the world and to its top partners
by kilograms (found first, untimed, and written into the query as literals, so the same text
runs against every table):

    SELECT month, partner_iso3, quantity_kg, value_usd, mom_pct, yoy_pct
    FROM <table> WHERE hs8 = '85051110' AND partner_iso3 IN ('WLD', <top 5>)
    ORDER BY partner_iso3, month

timed against three tables:
  served       marts.export_growth_monthly in the served file, as the build wrote it (no order
               by code: a code's rows are spread over the row groups, and the scan reads them all)
  ordered      the same rows in a scratch file, ordered by hs8, partner_iso3, month: DuckDB's
               zonemaps (per row group min/max) then skip the row groups without the code
  rare_earths  marts.export_growth_rare_earths in the served file: the small table the project
               keeps for the magnet and rare-earth headings (lib/serving/headline.py reads it)

Each is timed cold and warm, with read-only connections as a BI tool opens them. Cold: a
fresh process per timing (no DuckDB buffer cache; the operating system's page cache is not
dropped, which needs root), its open and its query timed apart. Warm: one connection, the
query run once, then timed `repeats` times. The figure kept is the median. Every table must
return the same rows. Prints one JSON object on its last line; the scratch file is deleted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HS8 = "85051110"
GROWTH = "marts.export_growth_monthly"
RARE_EARTHS = "marts.export_growth_rare_earths"
ORDER = "hs8, partner_iso3, month"

_SERIES_SQL = """SELECT month, partner_iso3, quantity_kg, value_usd, mom_pct, yoy_pct
FROM {table}
WHERE hs8 = '{hs8}' AND partner_iso3 IN ({partners})
ORDER BY partner_iso3, month"""


def series_sql(table: str, hs8: str, partners: list[str]) -> str:
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in ["WLD", *partners])
    return _SERIES_SQL.format(table=table, hs8=hs8, partners=quoted)


def top_partners(con: duckdb.DuckDBPyConnection, hs8: str, n: int) -> list[str]:
    """The code's n largest partners by kilograms over every month (the dashboard's legend)."""
    rows = con.execute(
        f"SELECT partner_iso3 FROM {GROWTH} WHERE hs8 = $hs8 AND partner_iso3 <> 'WLD' "
        "GROUP BY partner_iso3 ORDER BY sum(quantity_kg) DESC NULLS LAST, partner_iso3 LIMIT $n",
        {"hs8": hs8, "n": n},
    ).fetchall()
    return [r[0] for r in rows]


def layout(con: duckdb.DuckDBPyConnection, table: str, hs8: str) -> dict:
    """The table's rows and row groups, and how many row groups the zonemap of hs8 cannot rule out."""
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    segments = con.execute(
        f"SELECT row_group_id, stats FROM pragma_storage_info('{table}') WHERE column_name = 'hs8' AND segment_type <> 'VALIDITY'"
    ).fetchall()
    bounds: dict[int, list] = {}
    for group, text in segments:  # a row group's zonemap spans its segments' min and max
        m = re.search(r"Min: ([^,\]]*), Max: ([^,\]]*)", text or "")
        low, high = (m.group(1), m.group(2)) if m else ("", "\uffff")
        bound = bounds.setdefault(group, [low, high])
        bound[0], bound[1] = min(bound[0], low), max(bound[1], high)
    # the scan skips a row group whose min..max of hs8 leaves the code out
    holding = sum(1 for low, high in bounds.values() if low <= hs8 <= high)
    return {"rows": rows, "row_groups": len(bounds), "row_groups_not_skipped": holding}


def time_once(db: Path, sql: str) -> dict:
    """One cold timing: open the file read-only and run the query (in the calling process)."""
    started = time.perf_counter()
    con = duckdb.connect(str(db), read_only=True)
    opened = time.perf_counter()
    rows = con.execute(sql).fetchall()
    done = time.perf_counter()
    con.close()
    return {"open_s": opened - started, "query_s": done - opened, "rows": len(rows), "digest": digest(rows)}


def digest(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def cold(db: Path, sql: str, repeats: int) -> dict:
    """`repeats` timings, each in a fresh process (nothing of DuckDB's cache survives between them)."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, __file__, "once", str(db), sql], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if len({r["digest"] for r in runs}) != 1:
        raise RuntimeError(f"the same query returned different rows from {db}")
    return {"open_s": statistics.median(r["open_s"] for r in runs), "query_s": statistics.median(r["query_s"] for r in runs),
            "query_runs_s": [round(r["query_s"], 4) for r in runs], "rows": runs[0]["rows"], "digest": runs[0]["digest"]}


def warm(db: Path, sql: str, repeats: int) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(sql).fetchall()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            con.execute(sql).fetchall()
            times.append(time.perf_counter() - started)
    finally:
        con.close()
    return {"query_s": statistics.median(times), "query_runs_s": [round(t, 4) for t in times], "digest": digest(rows)}


def ordered_copy(served: Path, scratch: Path) -> float:
    """The growth table in a scratch file, its rows ordered for the query; returns the seconds it took."""
    from dagster_project.lib.warehouse.database import sql_str

    scratch.unlink(missing_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(str(scratch))
    try:
        con.execute(f"ATTACH '{sql_str(served)}' AS served (READ_ONLY)")
        con.execute("CREATE SCHEMA marts")
        con.execute(f"CREATE TABLE {GROWTH} AS SELECT * FROM served.{GROWTH} ORDER BY {ORDER}")
        con.execute("DETACH served")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return time.perf_counter() - started


def measure(served: Path, scratch_dir: Path, hs8: str = HS8, n_partners: int = 5, repeats: int = 3) -> dict:
    from dagster_project.lib.warehouse.database import table_exists

    with duckdb.connect(str(served), read_only=True) as con:
        partners = top_partners(con, hs8, n_partners)
        has_small = table_exists(con, *RARE_EARTHS.split("."))
        layouts = {"served": layout(con, GROWTH, hs8)}
        if has_small:
            layouts["rare_earths"] = layout(con, RARE_EARTHS, hs8)
    scratch_dir.mkdir(parents=True, exist_ok=True)
    scratch = scratch_dir / "growth_ordered.duckdb"
    try:
        order_s = ordered_copy(served, scratch)
        with duckdb.connect(str(scratch), read_only=True) as con:
            layouts["ordered"] = layout(con, GROWTH, hs8)
        targets = {"served": (served, GROWTH), "ordered": (scratch, GROWTH)}
        if has_small:
            targets["rare_earths"] = (served, RARE_EARTHS)
        tables = {}
        for name, (db, table) in targets.items():
            sql = series_sql(table, hs8, partners)
            tables[name] = {"file": str(db), "table": table, **layouts[name], "cold": cold(db, sql, repeats),
                            "warm": warm(db, sql, repeats)}
        tables["ordered"]["build_s"] = order_s
        tables["ordered"]["file_bytes"] = scratch.stat().st_size
    finally:
        scratch.unlink(missing_ok=True)
        shutil.rmtree(scratch.with_name(scratch.name + ".tmp"), ignore_errors=True)
    digests = {t["cold"]["digest"] for t in tables.values()} | {t["warm"]["digest"] for t in tables.values()}
    ratios = {
        when: {f"served_vs_{other}": tables["served"][when]["query_s"] / tables[other][when]["query_s"]
               for other in tables if other != "served"}
        for when in ("cold", "warm")
    }
    return {"hs8": hs8, "partners": partners, "sql": series_sql(GROWTH, hs8, partners), "rows": tables["served"]["cold"]["rows"],
            "same_rows": len(digests) == 1, "repeats": repeats, "served_bytes": served.stat().st_size,
            "tables": tables, "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["once"]:
        print(json.dumps(time_once(Path(argv[1]), argv[2])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("scratch_dir", type=Path)
    parser.add_argument("--hs8", default=HS8)
    parser.add_argument("--partners", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = measure(args.warehouse.resolve(), args.scratch_dir, args.hs8, args.partners, args.repeats)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
