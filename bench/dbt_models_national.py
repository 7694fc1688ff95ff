"""Time one compiled dbt model as CREATE TABLE AS on a copy of a warehouse, as the dbt profile runs it.

    python bench/dbt_models_national.py run WAREHOUSE SQL_FILE SCHEMA.TABLE MEMORY_LIMIT
    python bench/dbt_models_national.py compare WAREHOUSE SCHEMA.A SCHEMA.B

`run` prints one JSON line: seconds, peak RSS of this process (the whole DuckDB) and rows.
Run it under its own process per measurement so the peak is the model's. `compare` checks that
two tables hold the same rows (EXCEPT ALL of row hashes both ways, row counts) and the same column types.
Used to compare the old and new SQL of the expensive models at national size (bench/RESULTS.md).
"""
import json
import resource
import sys
import time

import duckdb


def run(warehouse: str, sql_file: str, target: str, memory_limit: str) -> None:
    sql = open(sql_file).read()
    con = duckdb.connect(warehouse)
    con.execute(f"set memory_limit = '{memory_limit}'")
    con.execute("set threads = 2")
    con.execute("set preserve_insertion_order = false")
    schema = target.split(".")[0]
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"drop table if exists {target}")
    start = time.perf_counter()
    error = None
    try:
        con.execute(f"create table {target} as {sql}")
    except duckdb.Error as exc:  # an out-of-memory error is a result too
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    seconds = time.perf_counter() - start
    rows = None if error else con.execute(f"select count(*) from {target}").fetchone()[0]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"table": target, "sql": sql_file, "memory_limit": memory_limit,
                      "seconds": round(seconds, 1), "peak_rss_mib": round(peak_mib), "rows": rows,
                      "error": error}), flush=True)


def compare(warehouse: str, a: str, b: str) -> None:
    con = duckdb.connect(warehouse)
    con.execute("set memory_limit = '2GB'")
    con.execute("set threads = 2")
    con.execute("set preserve_insertion_order = false")
    types = [con.execute(f"select column_name, data_type from duckdb_columns() where schema_name = '{t.split('.')[0]}' "
                         f"and table_name = '{t.split('.')[1]}' order by column_index").fetchall() for t in (a, b)]
    names = ", ".join(f'"{name}"' for name, _ in types[0])
    counts = [con.execute(f"select count(*) from {t}").fetchone()[0] for t in (a, b)]
    # EXCEPT ALL of the whole rows spills tens of GB at 50M rows x 31 columns: compare one 64-bit
    # hash of every row instead (a multiset of row hashes; a difference hidden by a collision is
    # about as likely as 2^-64 per row)
    row_hash = f"select hash({names}) as h from {{}}"
    a_not_b = con.execute(f"select count(*) from ({row_hash.format(a)} except all {row_hash.format(b)})").fetchone()[0]
    b_not_a = con.execute(f"select count(*) from ({row_hash.format(b)} except all {row_hash.format(a)})").fetchone()[0]
    print(json.dumps({"a": a, "b": b, "same_types": types[0] == types[1], "rows": counts,
                      "a_except_all_b": a_not_b, "b_except_all_a": b_not_a}), flush=True)


if __name__ == "__main__":
    {"run": run, "compare": compare}[sys.argv[1]](*sys.argv[2:])
