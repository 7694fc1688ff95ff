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
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

SCHEMA = "marts"
_MONTH_TYPES = ("DATE", "TIMESTAMP")  # TIMESTAMP WITH TIME ZONE, TIMESTAMP_NS ... start with this


@dataclass(frozen=True)
class ExportInfo:
    table: str  # table name within `marts`
    rows: int
    path: Path  # the .parquet file, or the .parquet directory when partitioned
    partitioned: bool
    partition_column: str | None  # hive key of the partitioned directory (normally "year")
    files: int  # parquet files written
    bytes: int  # their total size


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

    dest = out_dir / f"{table}.parquet"
    tmp = _tmp_sibling(dest, "tmp")
    partition_column = None
    try:
        if partitioned:
            partition_column = _partition_column(columns)
            query = (
                f"SELECT *, year({quote_ident('month')}) AS {quote_ident(partition_column)} "
                f"FROM {relation} ORDER BY {order_by}"
            )
            options = f"FORMAT parquet, PARTITION_BY ({quote_ident(partition_column)})"
        else:
            query = f"SELECT * FROM {relation} ORDER BY {order_by}"
            options = "FORMAT parquet"
        written = con.execute(f"COPY ({query}) TO {quote_literal(str(tmp))} ({options})").fetchone()
        if written is not None and written[0] != rows:
            raise RuntimeError(f"{schema}.{table}: counted {rows} rows but COPY wrote {written[0]}")
        files, size = _files_and_bytes(tmp)
        _swap_in(tmp, dest)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)
    return ExportInfo(
        table=table, rows=rows, path=dest, partitioned=partitioned,
        partition_column=partition_column, files=files, bytes=size,
    )


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
