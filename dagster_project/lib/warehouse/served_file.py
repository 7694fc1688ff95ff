"""The served file BI tools read: put in place read-only, and kept free of other programs' WALs.

The served file is only ever replaced, by a rename (working_copy.publish), never written in
place; read-only on disk (0444), a BI tool that opens it for writing gets an error instead
of changing what every reader sees. The mode does not stop root, and a program that held
the previous file open for writing across a publish writes its WAL under the served file's
name (DuckDB names the WAL after the path, not the file). DuckDB replays a WAL beside a file
for every reader, read-only ones too, so a WAL found there is set aside, with a notice,
before it can mix into the published data again.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster_project.lib.files import fsync_dir
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse.damage import set_aside
from dagster_project.lib.warehouse.database import wal_path
from dagster_project.lib.warehouse.notices import notice

SERVED_MODE = 0o444


def set_aside_served_wal(settings: Settings) -> Path | None:
    """Move a WAL found beside the served file out of readers' way, saying so; where it went, None when none."""
    wal = wal_path(settings.warehouse_path)
    if not wal.exists():
        return None
    kept = set_aside(wal, "ignored")
    notice(f"found {wal}: a program opened the served file for writing and wrote to it. Not applied (it would "
           f"have mixed into the published data for every reader): moved aside to {kept}. Open the served file "
           "read-only (docs/bi_tools.md).")
    return kept


def serve(tmp: Path, settings: Settings) -> None:
    """Put the finished file `tmp` in place of the served file: read-only on disk, no stray WAL, one rename."""
    os.chmod(tmp, SERVED_MODE)  # before the rename: the served name never points at a writable file
    set_aside_served_wal(settings)
    os.replace(tmp, settings.warehouse_path)  # over a read-only file too: the directory is what is written
    fsync_dir(settings.data_dir)
