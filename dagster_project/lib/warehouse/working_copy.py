"""The working copy, the served file, and the tables Python owns (raw.*, audit.*).

Builds never write the served file in place: a BI tool holding a read-only connection to
it would block the writer, and a reader refreshing mid-build would see half the months.
Every build writes `<warehouse>.build`; `publish()` checkpoints it and renames it over the
served file in one atomic step. The next build needs a working copy again: a background
process (`python -m dagster_project.lib.warehouse.working_copy refresh`) copies the served file back to
`<warehouse>.build` right after publishing, holding `<warehouse>.build.lock` while it copies;
a build that starts before the copy is done waits for it (`ensure_working_copy`). The copy
is the size of the whole warehouse (7 GB, ~20 s at 10 national years on ext4), so it is
kept off the build's critical path: the new month is served as soon as the rename is done.

A build can be killed at any moment (kill -9, OOM, a reboot; scripts/chaos.py does it on
purpose). What that leaves behind and why it is safe:

* `<warehouse>.build` and its `.wal`: DuckDB replays the committed transactions of the WAL
  when the next build opens the working copy, and drops the unfinished one; ingest commits
  one transaction per file and the dbt watermark moves only after dbt succeeded, so the
  next build redoes exactly what was lost.
* `*.partial` copies (and their `.wal`): never valid files, removed by the next build (under
  `<warehouse>.build.lock`, so never the one a live background copy is writing).
* no `<warehouse>.build` after a publish (the background copy was killed): the next build
  copies the served file itself.
* a `.wal` beside a file that is about to be *replaced or created*: DuckDB would replay it
  onto the new file (even a read-only connection does), mixing two databases, so it is
  removed first (`_discard_wal`).
* staged (transcoded) extracts in `<warehouse>.tmp/`: removed by the next build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from dagster_project.lib.files import fsync_dir
from dagster_project.lib.warehouse.build_lock import BuildLock
from dagster_project.lib.warehouse.database import RAW_DDL, create_raw_tables, open_db, sql_str
from dagster_project.lib.settings import PROJECT_ROOT, STORAGE_VERSION, Settings

if TYPE_CHECKING:
    import duckdb

AUDIT_TABLES = ("audit.rejected_files", "audit.check_results")


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _discard_wal(path: Path) -> None:
    """Remove the WAL of a file that is about to be created or replaced.

    A WAL belongs to one database file, but DuckDB does not check that: opening a file
    (read-only too) replays whatever `<file>.wal` lies beside it. Left from a killed process,
    it would be applied to the new file that now has that name.
    """
    _wal(path).unlink(missing_ok=True)


def _create_empty(path: Path) -> None:
    _discard_wal(path)
    con = open_db()
    try:
        con.execute(f"ATTACH '{sql_str(path)}' AS fresh (STORAGE_VERSION '{STORAGE_VERSION}')")
        con.execute("USE fresh")
        con.execute(RAW_DDL)
        con.execute("USE memory")
        con.execute("DETACH fresh")
    finally:
        con.close()


def _replace(tmp: Path, dst: Path) -> None:
    """Put `tmp` in place of `dst` in one atomic rename, without `dst`'s old WAL."""
    _discard_wal(dst)
    os.replace(tmp, dst)
    fsync_dir(dst.parent)


def _atomic_copy(src: Path, dst: Path) -> None:
    """Copy a closed, checkpointed DuckDB file over `dst` atomically: readers see the old or the new file."""
    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.partial")
    _discard_wal(tmp)
    shutil.copyfile(src, tmp)
    with tmp.open("rb+") as handle:
        os.fsync(handle.fileno())
    _replace(tmp, dst)


def clean_leftovers(settings: Settings) -> None:
    """What a killed build leaves besides the working copy is never valid: remove it.

    Partial copies (`*.partial`, from publish or from creating the working copy) and their
    WALs, and staged extracts. Builds run one at a time (the `duckdb_warehouse` pool), so
    none of these belongs to a live build when the next one starts.
    """
    name = settings.warehouse_path.name
    for pattern in (f"{name}*.partial", f"{name}*.partial.wal"):
        for leftover in settings.data_dir.glob(pattern):
            leftover.unlink(missing_ok=True)
    if settings.staging_dir.is_dir():
        for staged in settings.staging_dir.iterdir():
            if staged.is_file():
                staged.unlink(missing_ok=True)


def working_copy_lock(settings: Settings) -> BuildLock:
    """Held while the working copy is created, copied or renamed: by a build making sure it
    has one, by publish, and by the background copy after publish."""
    return BuildLock(settings.working_path.with_name(settings.working_path.name + ".lock"))


def ensure_working_copy(settings: Settings) -> Path:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    work = settings.working_path
    lock = working_copy_lock(settings)
    lock.acquire(on_wait=lambda pid: print(
        f"waiting for the copy of {settings.warehouse_path.name} to the working copy that the last publish started "
        f"(pid {pid or 'unknown'}) ...", file=sys.stderr, flush=True))
    try:
        clean_leftovers(settings)
        # Start from what readers see, so raw loads and audit history carry over.
        if not _copy_served_if_missing(settings) and not work.exists():
            _create_empty(work)
        with connect_working(settings, ensure=False) as con:
            create_raw_tables(con)
    finally:
        lock.release()
    return work


def _copy_served_if_missing(settings: Settings) -> bool:
    """With the working-copy lock held: copy the served file to a missing working copy; False if none was needed."""
    if settings.working_path.exists() or not settings.warehouse_path.exists():
        return False
    clean_leftovers(settings)
    _atomic_copy(settings.warehouse_path, settings.working_path)
    return True


def refresh_working_copy(settings: Settings, lock_held: bool = False) -> bool:
    """Copy the served file to the working copy if there is none; False when one was there.

    What the background process started by `publish` runs, holding the working-copy lock for
    the whole copy (`lock_held`: it was handed the lock by `publish`), so a build never sees
    half a copy. Killed, it leaves only a `.partial`: the next build removes it and copies the
    served file itself.
    """
    if lock_held:
        return _copy_served_if_missing(settings)
    with working_copy_lock(settings):
        return _copy_served_if_missing(settings)


def wait_for_working_copy(settings: Settings) -> None:
    """Return once no background copy is running (the working copy is there, or its copy died)."""
    with working_copy_lock(settings):
        pass


def _start_background_refresh(settings: Settings, lock: BuildLock) -> int:
    """Copy the served file back to the working copy in a process of its own, off the build's path.

    The process gets the descriptor of the lock `publish` holds: a flock stays held while any
    descriptor of it is open, so there is no moment between the publish and the copy in which
    a build (or `wait_for_working_copy`) could find neither the lock held nor a working copy.
    Its own session: it outlives the build, and a kill of the build's process group.
    """
    fd = lock.fileno()
    return subprocess.Popen(
        [sys.executable, "-m", "dagster_project.lib.warehouse.working_copy", "refresh", str(settings.warehouse_path), str(fd)],
        cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, pass_fds=(fd,),
    ).pid


@contextmanager
def connect_working(settings: Settings, ensure: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    if ensure and not settings.working_path.exists():
        ensure_working_copy(settings)
    con = open_db(settings.working_path)
    try:
        yield con
    finally:
        con.close()


def _checkpointed(path: Path) -> None:
    con = open_db(path)
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()


def publish(settings: Settings, background: bool = True) -> Path:
    """Put the working copy in place of the served file, atomically, by renaming it.

    The working copy for the next build is then copied back from the served file: in a
    background process (default), or here and now with `background=False`.
    """
    work = settings.working_path
    lock = working_copy_lock(settings)
    lock.acquire()  # (a background copy of an earlier publish finishes first)
    try:
        if not work.exists():
            # opening it would create an empty database, and this rename would serve it
            raise FileNotFoundError(f"no working copy to publish ({work}): build first")
        _checkpointed(work)
        with work.open("rb+") as handle:  # its blocks on disk before the new name points at them
            os.fsync(handle.fileno())
        _replace(work, settings.warehouse_path)
        if background:
            # the background process holds the lock from here on, through its copy of the descriptor
            lock.hand_over(_start_background_refresh(settings, lock))
    finally:
        lock.release()  # (nothing left to release once handed over)
    if not background:
        refresh_working_copy(settings)
    return settings.warehouse_path


def publish_audit_only(settings: Settings) -> None:
    """A failed build still tells BI readers why: copy the audit tables, keep the marts."""
    if not settings.working_path.exists():
        return
    tmp = settings.warehouse_path.with_name(f"{settings.warehouse_path.name}.{os.getpid()}.audit.partial")
    _discard_wal(tmp)  # e.g. left by a killed build that had the same pid (containers reuse pids)
    if settings.warehouse_path.exists():
        shutil.copyfile(settings.warehouse_path, tmp)
    else:  # the very first build failed: serve the audit tables alone
        _create_empty(tmp)
    con = open_db(tmp)
    try:
        con.execute(RAW_DDL)
        con.execute(f"ATTACH '{sql_str(settings.working_path)}' AS work (READ_ONLY)")
        for table in AUDIT_TABLES:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM work.{table}")
        con.execute("DETACH work")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    with tmp.open("rb+") as handle:
        os.fsync(handle.fileno())
    _replace(tmp, settings.warehouse_path)


def _main(argv: list[str]) -> int:
    """`refresh <served path> <lock fd>`: the background copy `publish` starts."""
    if len(argv) == 3 and argv[0] == "refresh":
        served, fd = Path(argv[1]), int(argv[2])
        try:
            refresh_working_copy(Settings(landing_dir=served.parent, warehouse_path=served), lock_held=True)
        finally:
            os.close(fd)  # the last descriptor of publish's lock: the next build may go on
        return 0
    print("usage: python -m dagster_project.lib.warehouse.working_copy refresh <served warehouse path> <lock fd>", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
