"""Damaged DuckDB files: telling them from busy or locked ones, and setting them aside.

A DuckDB file cut short (a full disk, a crash of the machine, a copy that stopped) or with a
broken header fails when it is opened: "Could not read enough bytes", "not a valid DuckDB
database file", "Corrupt database file" (a block's checksum). Every build would then fail
the same way until someone deleted the file by hand. Only these errors count as damage: a
file that another process holds locked, or that cannot be opened for want of permission or
disk, is not damaged and is never moved.

What is set aside is renamed, never deleted, for inspection, and only the latest one of a
kind is kept (a damaged warehouse copy can be gigabytes).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

# DuckDB's messages for a file whose bytes are wrong (1.1 to 1.5)
DAMAGE_SIGNS = ("Could not read enough bytes", "not a valid DuckDB database file", "Corrupt database file")

# DuckDB's main headers before the first block (Storage::FILE_HEADER_SIZE, three of them)
HEADERS_SIZE = 3 * 4096


class WarehouseDamaged(RuntimeError):
    """No readable copy of the warehouse to build on: a person has to choose what to do."""


def damage_reason(error: BaseException) -> str | None:
    """What a DuckDB error says is wrong with the file's bytes (its first line, without the path the
    caller names anyway); None for any other error."""
    text = str(error).strip()
    if not any(sign in text for sign in DAMAGE_SIGNS):
        return None
    if "not a valid DuckDB database file" in text:
        return "not a valid DuckDB database file: its header is wrong"
    return re.sub(r'^IO Error: | from file "[^"]*"', "", text.splitlines()[0])


def truncation(con: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    """Why `path` (open in `con`) is shorter than its blocks in use; None when it is not.

    A file cut short past its metadata opens, and fails only when a query reaches a missing
    block (in the middle of a build, or of a BI tool's query). Its header counts its blocks:
    the free ones may lie at the end and be cut off by DuckDB itself, so only a file shorter
    than the blocks in use is suspect, and it is read through to tell (one full scan, only then).
    """
    block_size, blocks, free = con.execute(
        "SELECT block_size, total_blocks, free_blocks FROM pragma_database_size()").fetchone()
    least = HEADERS_SIZE + int(block_size) * (int(blocks) - int(free))
    size = path.stat().st_size
    if size >= least:
        return None
    missing = read_through(con)
    if missing is None:
        return None
    return f"truncated: {size:,} bytes where its blocks in use take {least:,} ({missing})"


def read_through(con: duckdb.DuckDBPyConnection) -> str | None:
    """Read every column of every table; where a damaged block stops it, None when all is read."""
    import duckdb

    tables = con.execute(
        "SELECT database_name, schema_name, table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY ALL").fetchall()
    for db, schema, table in tables:
        name = f'"{db}"."{schema}"."{table}"'
        try:
            con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {name}").fetchall()
        except duckdb.Error as exc:
            reason = damage_reason(exc)
            if reason is None:
                raise
            return f"reading {schema}.{table}: {reason}"
    return None


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def set_aside(path: Path, tag: str) -> Path:
    """Rename `path` (and its WAL) to `<path>.<tag>-<time>`, removing the one set aside before."""
    for older in path.parent.glob(f"{path.name}.{tag}-*"):
        older.unlink(missing_ok=True)
    target = path.with_name(f"{path.name}.{tag}-{stamp()}")
    os.replace(path, target)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        os.replace(wal, target.with_name(target.name + ".wal"))
    return target
