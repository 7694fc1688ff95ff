"""Parquet copies of every table in the `marts` schema, for tools that do not speak DuckDB.

Pure library code (no Dagster imports). `export_marts(con, out_dir, changed)` writes one file
per table, `<out_dir>/<table>.parquet`, rows sorted by all columns so that an unchanged table
gives the same file. A table with more than `partition_threshold_rows` rows and a DATE or
TIMESTAMP `month` column is written instead as a hive-partitioned directory
`<out_dir>/<table>.parquet/year=YYYY/*.parquet` (read it back with
`read_parquet('<dir>/**/*.parquet', hive_partitioning = true)`).

The BI views of `marts` (v_*) are exported too, as tables are: BI tools that read Parquet see
what DuckDB readers see. Tables of other schemas or other attached databases are not. Reading
works on a read-only connection.

What to write is the caller's to say (`changed`: the tables, and of the month-partitioned
tables the years, whose rows may have changed since the last export); whatever output is
missing is written as well. An export after an incremental build thus writes the year or two
of the rebuilt months, not ten years of data; a one-file table is written again from its own
rows of the other years and the table's rows of those.

Each output is written under a temporary name in `out_dir` and swapped in: one rename for a
file; for a directory (or when a file becomes a directory or the reverse) the old output is
renamed aside, the new one renamed in, and the old one deleted. A reader therefore sees
either the previous export of a table or the new one, never a half-written file. Outputs of
tables that no longer exist are left alone.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping

import duckdb

from dagster_project.lib.files import atomic_path, temp_sibling

SCHEMA = "marts"
# The way files are written: a change to it must rewrite every output (the asset's code version).
WRITER_VERSION = "parquet_export/3"
_MONTH_TYPES = ("DATE", "TIMESTAMP")  # TIMESTAMP WITH TIME ZONE, TIMESTAMP_NS ... start with this

# What changed of one table: None = all of it; otherwise the years of `month` (empty: nothing).
Years = Collection[int] | None


@dataclass(frozen=True)
class ExportInfo:
    table: str  # table name within `marts`
    rows: int
    path: Path  # the .parquet file, or the .parquet directory when partitioned
    partitioned: bool
    partition_column: str | None  # hive key of the partitioned directory (normally "year")
    files: int  # parquet files in the output
    bytes: int  # their total size
    reused: int = 0  # of those files, how many were kept as they were


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


def mart_views(con: duckdb.DuckDBPyConnection, schema: str = SCHEMA) -> list[str]:
    """Views of `schema` in the connection's current database, by name."""
    rows = con.execute(
        "SELECT view_name FROM duckdb_views() "
        "WHERE database_name = current_database() AND schema_name = $schema AND NOT temporary AND NOT internal "
        "ORDER BY view_name",
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


def _has_month(columns: list[tuple[str, str]]) -> bool:
    """A DATE or TIMESTAMP `month` column: what a year directory is split by."""
    return any(name == "month" and kind.upper().startswith(_MONTH_TYPES) for name, kind in columns)


def _partition_column(columns: list[tuple[str, str]]) -> str:
    """`year`, unless the table already has a column of that name (e.g. dim_month)."""
    taken = {name.lower() for name, _ in columns}
    name = "year"
    while name in taken:
        name = "_" + name
    return name


def _is_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _remove(path: Path) -> None:
    if _is_dir(path):
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _swap_in(new: Path, dest: Path) -> None:
    """Move `new` to `dest` (same directory), replacing whatever `dest` was."""
    if new.is_file() and not _is_dir(dest):
        os.replace(new, dest)  # atomic: readers see the old file or the new one
        return
    old = None
    if dest.exists() or dest.is_symlink():
        old = temp_sibling(dest, "old")
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


def _copy(con, query: str, target: Path, partition_column: str | None = None) -> int:
    options = "FORMAT parquet"
    if partition_column:
        options += f", PARTITION_BY ({quote_ident(partition_column)})"
    written = con.execute(f"COPY ({query}) TO {quote_literal(str(target))} ({options})").fetchone()
    return written[0] if written is not None else -1


def export_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    out_dir: Path,
    changed: Years = None,
    partition_threshold_rows: int = 1_000_000,
    schema: str = SCHEMA,
    years: Collection[int] | None = None,
) -> ExportInfo:
    """Export one table of `schema` (`changed`: see `Years`); see the module docstring.

    `years`: the years of `month` the table can have rows in, when the caller knows them without
    reading it (a view's, from the tables it reads); otherwise they are read from the table."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = _columns(con, schema, table)
    if not columns:
        raise ValueError(f"{schema}.{table} is not a table or view in the current database")
    relation = f"{quote_ident(schema)}.{quote_ident(table)}"
    order_by = ", ".join(quote_ident(name) for name, _ in columns)
    by_month = _has_month(columns)
    partition_column = _partition_column(columns) if by_month else None
    dest = out_dir / f"{table}.parquet"

    def info(rows: int, partitioned: bool, reused: int) -> ExportInfo:
        files, size = _files_and_bytes(dest)
        return ExportInfo(table=table, rows=rows, path=dest, partitioned=partitioned,
                          partition_column=partition_column if partitioned else None,
                          files=files, bytes=size, reused=reused)

    if by_month and _is_dir(dest) and changed is not None:
        # An update of a year directory counts the rows it writes and reads the kept years' counts
        # from their Parquet footers: a count(*) of a BI view runs its joins over every year
        # (36 s of the 60 s export after one new month at the national size)
        reused, rows = _write_years(con, relation, order_by, dest, partition_column, changed, years)
        if rows > partition_threshold_rows:
            return info(rows, True, reused)
    if dest.is_file() and changed is not None:
        # A one-file output keeps its unchanged rows too: counting or rewriting it whole reads every
        # year of the table, of a view its joins (4.8 of the 8.9 s export after one new month at the
        # national size went to v_exports_eu_monthly, one file filtered out of all 51M fact rows).
        # A file with other columns than the table's (its model changed) is written whole, below.
        if not changed:
            rows = _footer_rows(con, [dest])
            if not (by_month and rows > partition_threshold_rows):  # (a lowered threshold splits it)
                return info(rows, False, 1)
        elif by_month and _file_columns(con, dest) == [name for name, _ in columns]:
            rows = _rewrite_years_in_file(con, relation, columns, order_by, dest, changed)
            if rows <= partition_threshold_rows:
                return info(rows, False, 0)
            # grown past the threshold: written again below, as a year directory
    rows = con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
    if by_month and rows > partition_threshold_rows:
        if _is_dir(dest):
            reused, _ = _write_years(con, relation, order_by, dest, partition_column, changed, years)
        else:
            # The first export too is written a year at a time: one sort of 50M rows spills under the
            # 1 GB memory limit (98 s at the national size), ten sorts of a year each fit
            new = temp_sibling(dest, "new")
            new.mkdir()
            try:
                _write_years(con, relation, order_by, new, partition_column, None, years)
                _swap_in(new, dest)
            finally:
                if new.exists():
                    _remove(new)
            reused = 0
        return info(rows, True, reused)
    _write_file(con, f"SELECT * FROM {relation} ORDER BY {order_by}", dest, rows, f"{schema}.{table}")
    return info(rows, False, 0)


def _write_file(con, query: str, dest: Path, rows: int, name: str) -> None:
    def copy(target: Path) -> None:
        written = _copy(con, query, target)
        if written not in (-1, rows):
            raise RuntimeError(f"{name}: counted {rows} rows but COPY wrote {written}")

    if not _is_dir(dest):
        with atomic_path(dest) as tmp:
            copy(tmp)
        return
    tmp = temp_sibling(dest)  # the table shrank below the threshold: a directory becomes a file
    try:
        copy(tmp)
        _swap_in(tmp, dest)
    finally:
        if tmp.exists():
            _remove(tmp)


def _footer_rows(con, files: list[Path]) -> int:
    """Rows of Parquet files, from their footers (no data read)."""
    return con.execute("SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)",
                       [[str(f) for f in files]]).fetchone()[0]


def _file_columns(con, path: Path) -> list[str]:
    return [r[0] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet({quote_literal(str(path))}, hive_partitioning = false)").fetchall()]


def _year_ranges(years: Collection[int]) -> str:
    """A predicate on `month` itself, not year(month): DuckDB then skips the row groups of other years
    by their min/max (after an increment, the new months sit in row groups of their own)."""
    month = quote_ident("month")
    return "(" + " OR ".join(f"({month} >= DATE '{y:04d}-01-01' AND {month} < DATE '{y + 1:04d}-01-01')"
                             for y in sorted(years)) + ")"


def _rewrite_years_in_file(con, relation: str, columns: list[tuple[str, str]], order_by: str, dest: Path,
                           changed: Collection[int]) -> int:
    """Write `dest` again with the rows of the `changed` years (and any without a month) read from
    the table, and the rest kept from `dest` itself, cast back to the table's types. The same rows
    in the same order as a whole rewrite. Returns the rows written."""
    month = quote_ident("month")
    kept = ", ".join(f"CAST({quote_ident(name)} AS {kind}) AS {quote_ident(name)}" for name, kind in columns)
    query = (f"SELECT * FROM (SELECT {kept} FROM read_parquet({quote_literal(str(dest))}) "
             f"WHERE {month} IS NOT NULL AND NOT {_year_ranges(changed)} "
             f"UNION ALL SELECT * FROM {relation} WHERE {month} IS NULL OR {_year_ranges(changed)}) "
             f"ORDER BY {order_by}")
    with atomic_path(dest) as tmp:
        return _copy(con, query, tmp)


def _write_years(con, relation: str, order_by: str, dest: Path, partition_column: str, changed: Years,
                 years: Collection[int] | None) -> tuple[int, int]:
    """Write the changed years and the years `dest` lacks; drop years the table no longer has.
    Returns the number of files kept and the rows of the output."""
    month = quote_ident("month")
    if years is None:
        years = [y for (y,) in con.execute(f"SELECT DISTINCT year({month}) FROM {relation}").fetchall()]
    reused = rows = 0
    present = set()
    for year in sorted(years):
        year_dir = dest / f"{partition_column}={year}"
        files = sorted(year_dir.glob("*.parquet")) if _is_dir(year_dir) else []
        if files and changed is not None and year not in changed:
            reused += len(files)
            rows += _footer_rows(con, files)
            present.add(year_dir.name)
            continue
        tmp = temp_sibling(dest)
        try:
            query = (f"SELECT *, year({month}) AS {quote_ident(partition_column)} FROM {relation} "
                     f"WHERE {_year_ranges([year])} ORDER BY {order_by}")
            written = _copy(con, query, tmp, partition_column)
            if written:  # a year of the given `years` without rows writes no directory
                _swap_in(tmp / year_dir.name, year_dir)
                rows += written
                present.add(year_dir.name)
        finally:
            if tmp.exists():
                _remove(tmp)
    for entry in dest.iterdir():
        if entry.name not in present:  # a year the table no longer has, or another layout's leftovers
            _remove(entry)
    return reused, rows


def export_marts(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    changed: Mapping[str, Years] | None = None,
    partition_threshold_rows: int = 1_000_000,
    view_sources: Mapping[str, Collection[str]] | None = None,
) -> dict[str, ExportInfo]:
    """Export the base tables and views of `marts` to Parquet in `out_dir`; returns info by name.

    `changed` maps a table to what of it changed since the last export (None: all of it, or
    the years of `month`); a table it does not name is unchanged, and only its missing outputs
    are written. `changed=None` (no earlier export to go by) writes every table in full.
    A view changed where the tables it reads did (`view_sources`: the tables of `marts` each
    view reads), and wholly when `changed` says so of the view itself (it was redefined); a view
    whose sources are not given changed where any table did.
    `info[t].rows` is the row count of each table (the parquet output holds exactly those rows).
    """
    Path(out_dir).mkdir(parents=True, exist_ok=True)  # an export of no table leaves the folder, empty
    tables, views = mart_tables(con), mart_views(con)
    if changed is None:
        what = dict.fromkeys(tables + views)
    else:
        of_tables = {t: changed[t] for t in tables if t in changed}
        what = {t: of_tables.get(t, ()) for t in tables}
        for view in views:
            if view_sources is None or view not in view_sources:
                what[view] = _view_change(of_tables)
            else:
                read = {t: of_tables[t] for t in view_sources[view] if t in of_tables}
                what[view] = _view_change({**read, view: changed.get(view, ())})
    years_of: dict[str, set[int] | None] = {}

    def view_years(view: str) -> set[int] | None:
        """The years a view can have rows in: those of the tables it reads (its rows are theirs,
        joined). Reading the view's own years would run its joins over every year."""
        sources = (view_sources or {}).get(view)
        if not sources or not set(sources) <= set(tables):
            return None
        for t in sources:
            if t not in years_of:
                years_of[t] = {y for (y,) in con.execute(
                    f"SELECT DISTINCT year(month) FROM {quote_ident(SCHEMA)}.{quote_ident(t)}").fetchall()
                } if _has_month(_columns(con, SCHEMA, t)) else None
        dated = [years_of[t] for t in sources if years_of[t] is not None]
        return set().union(*dated) if dated else None

    return {name: export_table(con, name, out_dir, years, partition_threshold_rows,
                               years=view_years(name) if name in views else None)
            for name, years in what.items()}


def _view_change(changed: Mapping[str, Years]) -> Years:
    """What of a view changed: its rows are its tables' rows, whenever the view itself was last
    created, so it changed where they did (all of it when one changed whole, e.g. a dimension)."""
    if not changed:
        return ()
    if None in changed.values():
        return None
    return set().union(*changed.values())
