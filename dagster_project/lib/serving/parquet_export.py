"""Parquet copies of every table in the `marts` schema, for tools that do not speak DuckDB.

Pure library code (no Dagster imports). `export_marts(con, out_dir)` writes one file per
table, `<out_dir>/<table>.parquet`, rows sorted by all columns so that an unchanged table
gives the same file. A table with more than `partition_threshold_rows` rows and a DATE or
TIMESTAMP `month` column is written instead as a hive-partitioned directory
`<out_dir>/<table>.parquet/year=YYYY/*.parquet` (read it back with
`read_parquet('<dir>/**/*.parquet', hive_partitioning = true)`).

Views are not exported, nor tables of other schemas or other attached databases. Reading
works on a read-only connection.

Each output is written under a temporary name in `out_dir` and swapped in: `os.replace`
for a file; for a directory (or when a file becomes a directory or the reverse) the old
output is renamed aside, the new one renamed in, and the old one deleted. A reader
therefore sees either the previous export of a table or the new one, never a half-written
file. Outputs of tables that no longer exist are left alone.

Outputs are reused when their rows did not change: each file carries, in its Parquet
key-value metadata, a fingerprint of the rows it holds (count and order-independent sum
of row hashes, with the column names and types), per year for partitioned tables. An
export then rewrites only the tables, or the years, whose fingerprint differs: after an
incremental build that is the year or two of the rebuilt months, not ten years of data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

SCHEMA = "marts"
FINGERPRINT_KEY = "customs_fingerprints"
_WRITER = "parquet_export/2"  # bump when the way files are written changes: every output is rewritten
_MONTH_TYPES = ("DATE", "TIMESTAMP")  # TIMESTAMP WITH TIME ZONE, TIMESTAMP_NS ... start with this


@dataclass(frozen=True)
class ExportInfo:
    table: str  # table name within `marts`
    rows: int
    path: Path  # the .parquet file, or the .parquet directory when partitioned
    partitioned: bool
    partition_column: str | None  # hive key of the partitioned directory (normally "year")
    files: int  # parquet files in the output
    bytes: int  # their total size
    reused: int = 0  # of those files, how many were kept because their rows had not changed


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes, embedded quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A DuckDB string literal in single quotes, embedded quotes doubled."""
    return "'" + text.replace("'", "''") + "'"


def mart_tables(con: duckdb.DuckDBPyConnection, schema: str = SCHEMA) -> list[str]:
    """Base tables (no views) of `schema` in the connection's current database, by name."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = $schema AND NOT temporary "
        "ORDER BY table_name",
        {"schema": schema},
    ).fetchall()
    return [r[0] for r in rows]


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = $schema AND table_name = $table "
        "ORDER BY column_index",
        {"schema": schema, "table": table},
    ).fetchall()


def _partition_column(columns: list[tuple[str, str]]) -> str:
    """`year`, unless the table already has a column of that name (e.g. dim_month)."""
    taken = {name.lower() for name, _ in columns}
    name = "year"
    while name in taken:
        name = "_" + name
    return name


def _tmp_sibling(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _swap_in(new: Path, dest: Path) -> None:
    """Move `new` to `dest` (same directory), replacing whatever `dest` was."""
    if new.is_file() and not (dest.is_dir() and not dest.is_symlink()):
        os.replace(new, dest)  # atomic: readers see the old file or the new one
        return
    old = None
    if dest.exists() or dest.is_symlink():
        old = _tmp_sibling(dest, "old")
        os.rename(dest, old)
    try:
        os.rename(new, dest)
    except BaseException:
        if old is not None:
            os.rename(old, dest)
        raise
    if old is not None:
        _remove(old)


def _files_and_bytes(path: Path) -> tuple[int, int]:
    if path.is_file():
        return 1, path.stat().st_size
    files = [p for p in path.rglob("*.parquet") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


MONTH_FINGERPRINTS = "audit.mart_month_fingerprints"  # created by warehouse.RAW_DDL, kept by dbt hooks
# The marts whose models carry those hooks: only their record is completed here (a table
# without the hooks would keep a record its incremental builds never update).
MONTH_FINGERPRINTED = ("export_growth_monthly", "fct_exports_monthly")


def record_missing_month_fingerprints(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Hash the months of the fingerprinted marts that the record lacks; forget months they no longer have.

    Run on the working copy (where warehouse.RAW_DDL created the record) before it is published. After an incremental build nothing is
    missing (the dbt hooks recorded the months it wrote) and this reads only the `month`
    column; after a build of every month it hashes them all, once. Returns months hashed per table.
    """
    hashed = {}
    tables = mart_tables(con)
    for table in MONTH_FINGERPRINTED:
        if table not in tables:
            continue
        relation = f"{quote_ident(SCHEMA)}.{quote_ident(table)}"
        if _record_adds_up(con, table, relation):
            hashed[table] = 0
            continue
        present = {m for (m,) in con.execute(f"SELECT DISTINCT month FROM {relation}").fetchall()}
        recorded = {m for (m,) in con.execute(
            f"SELECT month FROM {MONTH_FINGERPRINTS} WHERE table_name = $t", {"t": table}).fetchall()}
        missing, gone = sorted(present - recorded), sorted(recorded - present)
        if gone:
            con.execute(f"DELETE FROM {MONTH_FINGERPRINTS} WHERE table_name = $t AND list_contains($m, month)",
                        {"t": table, "m": gone})
        if missing:
            # a literal list of months: DuckDB filters it in the scan
            months = ", ".join(f"DATE '{m:%Y-%m-%d}'" for m in missing)
            con.execute(f"""INSERT INTO {MONTH_FINGERPRINTS}
                            SELECT {quote_literal(table)}, month, count(*), sum(hash(t)) FROM {relation} t
                            WHERE month IN ({months}) GROUP BY month""")
        hashed[table] = len(missing)
    return hashed


def _record_adds_up(con, table: str, relation: str) -> bool:
    """The record's row counts add up to the table's: then it has every month the table has.

    DuckDB keeps each table's row count, so this reads no column; comparing the months
    themselves reads the `month` column of every row (51M at the national size, and growing
    with history), which only a record that does not add up needs. A month missing from the
    record, or one recorded that the table no longer has, changes the sum.
    """
    recorded = con.execute(f"SELECT sum(row_count) FROM {MONTH_FINGERPRINTS} WHERE table_name = $t", {"t": table}).fetchone()[0]
    return recorded is not None and recorded == con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]


def _month_fingerprint_rows(con, schema: str, table: str, relation: str) -> list[tuple] | None:
    """Per year (count, hash sum) from the months dbt recorded, or None unless they cover the table.

    The sums are what hashing the year's rows gives (sum(hash(t)) is additive over months),
    without reading ten years of rows: the record covers the table when its row counts add up
    to the table's, or else when its months are exactly the table's (the `month` column read).
    """
    if schema != SCHEMA:
        return None
    try:
        recorded = con.execute(
            f"SELECT list(month ORDER BY month) FROM {MONTH_FINGERPRINTS} WHERE table_name = $t", {"t": table}
        ).fetchone()[0]
    except duckdb.CatalogException:
        return None  # a warehouse built before the hooks existed
    if not recorded:
        return None
    if not _record_adds_up(con, table, relation):
        present = con.execute(f"SELECT list(DISTINCT {quote_ident('month')} ORDER BY {quote_ident('month')}) FROM {relation}").fetchone()[0]
        if present != recorded:
            return None
    return con.execute(
        f"SELECT year(month) AS k, sum(row_count), sum(row_hash_sum) FROM {MONTH_FINGERPRINTS} "
        "WHERE table_name = $t GROUP BY 1",
        {"t": table},
    ).fetchall()


def _fingerprints(con, relation: str, columns: list[tuple[str, str]], by_year: bool,
                  schema: str = SCHEMA, table: str | None = None) -> dict[str, str]:
    """{"*": fp} for the whole table, or {"2024": fp, ...} per year of `month`."""
    shape = _WRITER + "|" + "|".join(f"{n}:{t}" for n, t in columns)
    rows = _month_fingerprint_rows(con, schema, table, relation) if by_year and table else None
    if rows is None:
        group = f"year({quote_ident('month')})" if by_year else "'*'"
        rows = con.execute(
            f"SELECT {group} AS k, count(*), sum(hash(t)) FROM {relation} t GROUP BY 1"
        ).fetchall()
    return {str(k): hashlib.sha256(f"{shape}|{n}|{h}".encode()).hexdigest()[:32] for k, n, h in rows}


def _stored_fingerprints(con, parquet: Path) -> dict[str, str]:
    try:
        rows = con.execute(
            "SELECT value FROM parquet_kv_metadata($p) WHERE decode(key) = $k", {"p": str(parquet), "k": FINGERPRINT_KEY}
        ).fetchall()
        return json.loads(bytes(rows[0][0]).decode()) if rows else {}
    except (duckdb.Error, ValueError):
        return {}  # not ours, damaged or unreadable: written again


def _copy(con, query: str, target: Path, partition_column: str | None, fingerprints: dict[str, str]) -> int:
    metadata = quote_literal(json.dumps(fingerprints, sort_keys=True))
    options = f"FORMAT parquet, KV_METADATA {{{FINGERPRINT_KEY}: {metadata}}}"
    if partition_column:
        options += f", PARTITION_BY ({quote_ident(partition_column)})"
    written = con.execute(f"COPY ({query}) TO {quote_literal(str(target))} ({options})").fetchone()
    return written[0] if written is not None else -1


def export_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    out_dir: Path,
    partition_threshold_rows: int = 1_000_000,
    schema: str = SCHEMA,
) -> ExportInfo:
    """Export one table of `schema`; see the module docstring."""
    out_dir = Path(out_dir)
    columns = _columns(con, schema, table)
    if not columns:
        raise ValueError(f"{schema}.{table} is not a table in the current database")
    relation = f"{quote_ident(schema)}.{quote_ident(table)}"
    rows = con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
    order_by = ", ".join(quote_ident(name) for name, _ in columns)
    month_type = next((t.upper() for name, t in columns if name == "month"), None)
    partitioned = rows > partition_threshold_rows and month_type is not None and month_type.startswith(_MONTH_TYPES)
    partition_column = _partition_column(columns) if partitioned else None
    fingerprints = _fingerprints(con, relation, columns, by_year=partitioned, schema=schema, table=table)

    dest = out_dir / f"{table}.parquet"
    def info(reused: int) -> ExportInfo:
        files, size = _files_and_bytes(dest)
        return ExportInfo(table=table, rows=rows, path=dest, partitioned=partitioned,
                          partition_column=partition_column, files=files, bytes=size, reused=reused)

    if not partitioned and dest.is_file() and _stored_fingerprints(con, dest) == fingerprints:
        return info(reused=1)
    if partitioned and dest.is_dir() and not dest.is_symlink():
        return _update_years(con, relation, order_by, dest, partition_column, fingerprints, info)
    if partitioned:
        # The first export too is written a year at a time: one sort of 50M rows spills under the
        # 1 GB memory limit (98 s at the national size), ten sorts of a year each fit
        new = _tmp_sibling(dest, "new")
        new.mkdir()
        try:
            _update_years(con, relation, order_by, new, partition_column, fingerprints, lambda reused: None)
            _swap_in(new, dest)
        finally:
            if new.exists():
                _remove(new)
        return info(reused=0)

    tmp = _tmp_sibling(dest, "tmp")
    try:
        if partitioned:
            query = (f"SELECT *, year({quote_ident('month')}) AS {quote_ident(partition_column)} "
                     f"FROM {relation} ORDER BY {order_by}")
        else:
            query = f"SELECT * FROM {relation} ORDER BY {order_by}"
        written = _copy(con, query, tmp, partition_column, fingerprints)
        if written not in (-1, rows):
            raise RuntimeError(f"{schema}.{table}: counted {rows} rows but COPY wrote {written}")
        _swap_in(tmp, dest)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)
    return info(reused=0)


def _update_years(con, relation, order_by, dest: Path, partition_column: str, fingerprints: dict[str, str], info):
    """Rewrite only the year directories whose rows changed; drop years the table no longer has."""
    reused = 0
    for year, fingerprint in sorted(fingerprints.items()):
        year_dir = dest / f"{partition_column}={year}"
        files = sorted(year_dir.glob("*.parquet")) if year_dir.is_dir() else []
        if files and all(_stored_fingerprints(con, f).get(year) == fingerprint for f in files):
            reused += len(files)
            continue
        tmp = _tmp_sibling(dest, "tmp")
        try:
            # a range on `month` itself, not year(month): DuckDB then skips the row groups of other
            # years by their min/max (after an increment, the new months sit in row groups of their own)
            month = quote_ident("month")
            query = (f"SELECT *, year({month}) AS {quote_ident(partition_column)} FROM {relation} "
                     f"WHERE {month} >= DATE '{int(year):04d}-01-01' AND {month} < DATE '{int(year) + 1:04d}-01-01' "
                     f"ORDER BY {order_by}")
            _copy(con, query, tmp, partition_column, fingerprints)
            _swap_in(tmp / year_dir.name, year_dir)
        finally:
            if tmp.exists():
                _remove(tmp)
    wanted = {f"{partition_column}={year}" for year in fingerprints}
    for entry in dest.iterdir():
        if entry.name not in wanted:  # a year the table no longer has, or another layout's leftovers
            _remove(entry)
    return info(reused=reused)


def export_marts(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    partition_threshold_rows: int = 1_000_000,
) -> dict[str, ExportInfo]:
    """Export every base table of `marts` to Parquet in `out_dir`; returns info by table name.

    `info[t].rows` is the row count of each table (the parquet output holds exactly those rows).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        table: export_table(con, table, out_dir, partition_threshold_rows)
        for table in mart_tables(con)
    }
