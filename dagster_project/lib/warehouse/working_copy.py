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
  removed first (`discard_wal`).
* staged (transcoded) extracts in `<warehouse>.tmp/`: removed by the next build.

What else can go wrong with the files, and what a build does about it (each time saying so:
lib/warehouse/notices.py):

* a working copy that DuckDB cannot read (cut short by a full disk or a crash of the machine,
  a broken header: lib/warehouse/damage.py): set aside as `<warehouse>.build.damaged-<time>`
  and copied again from the served file. With the served file damaged too, or none, there is
  nothing to copy: the build stops with `WarehouseDamaged`, saying what to move away and re-run.
  (Not started empty: the step that finds it may not be the build's first, and its run would
  publish an empty warehouse.)
* the served file is read-only on disk (0444), so a BI tool that opens it for writing gets an
  error instead of changing what every reader sees. A WAL beside it all the same (written as
  root, which the mode does not stop) would be replayed by every reader: each build sets it
  aside as `<warehouse>.wal.ignored-<time>` when it starts, and so does the publish.
* a background copy that failed (a full disk) removes its partial copy and leaves
  `<warehouse>.build.copy-failed` saying why; the next build copies again and says so.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from dagster_project.lib.files import fsync_dir
from dagster_project.lib.warehouse.build_lock import BuildLock
from dagster_project.lib.warehouse.damage import WarehouseDamaged, damage_reason, set_aside, truncation
from dagster_project.lib.warehouse.database import RAW_DDL, create_raw_tables, discard_wal, open_db, sql_str
from dagster_project.lib.warehouse.leftovers import clean_leftovers, last_copy_failure, record_copy_failure
from dagster_project.lib.warehouse.notices import notice
from dagster_project.lib.warehouse.served_file import serve, set_aside_served_wal
from dagster_project.lib.settings import PROJECT_ROOT, STORAGE_VERSION, Settings

if TYPE_CHECKING:
    import duckdb

AUDIT_TABLES = ("audit.rejected_files", "audit.check_results")


def _create_empty(path: Path) -> None:
    discard_wal(path)
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
    discard_wal(dst)
    os.replace(tmp, dst)
    fsync_dir(dst.parent)


def _writable(path: Path) -> None:
    """The working copy is written by every build, whatever mode the file it was copied from had."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & stat.S_IWUSR:
        os.chmod(path, mode | stat.S_IWUSR)


def _atomic_copy(src: Path, dst: Path) -> None:
    """Copy a closed, checkpointed DuckDB file over `dst` atomically: readers see the old or the new file.

    A copy that fails (a full disk) removes its partial file: it is never valid, and it holds the space."""
    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.partial")
    discard_wal(tmp)
    try:
        shutil.copyfile(src, tmp)  # a new file: not the served file's read-only mode
        _writable(tmp)
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _replace(tmp, dst)


def working_copy_lock(settings: Settings) -> BuildLock:
    """Held while the working copy is created, copied or renamed: by a build making sure it
    has one, by publish, and by the background copy after publish."""
    return BuildLock(settings.working_path.with_name(settings.working_path.name + ".lock"))


def ensure_working_copy(settings: Settings) -> Path:
    """Make sure there is a readable working copy with the raw and audit tables, under the working-copy lock.

    What the last build or copy left is dealt with first, each time saying so (notices): the
    partial copies, a WAL beside the served file, a damaged working copy.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    work = settings.working_path
    lock = working_copy_lock(settings)
    lock.acquire(on_wait=lambda pid: print(
        f"waiting for the copy of {settings.warehouse_path.name} to the working copy that the last publish started "
        f"(pid {pid or 'unknown'}) ...", file=sys.stderr, flush=True))
    try:
        failed_copy = last_copy_failure(settings, clean_leftovers(settings))
        set_aside_served_wal(settings)  # before the served file is copied: it is not copied, but readers replay it
        damaged = None
        if work.exists():
            reason = _prepare(work)
            if reason is not None:
                damaged = (set_aside(work, "damaged"), reason)
        if work.exists():
            return work
        if settings.warehouse_path.exists():
            # Start from what readers see, so raw loads and audit history carry over.
            _copy_served(settings, damaged)
            if damaged is not None:
                notice(f"the working copy {work} could not be read ({damaged[1]}): rebuilt from the served file "
                       f"{settings.warehouse_path}; the damaged file is kept as {damaged[0]}. What had not been "
                       "published is loaded and built again.")
            elif failed_copy is not None:
                notice(f"the last copy of the served file to the working copy {work.name} had not finished: "
                       f"{failed_copy}. Copied again.")
        elif damaged is not None:
            # Starting empty is right at the start of a build (its ingest loads every landing file), but
            # this may be a later step: its run would publish an empty warehouse. A person re-runs.
            raise WarehouseDamaged(
                f"The working copy {work} could not be read ({damaged[1]}; kept as {damaged[0]}), and there is no "
                f"served file {settings.warehouse_path} to rebuild it from.\n"
                f"The landing files in {settings.landing_dir} are intact (builds never modify them): run `make run` "
                "again: it starts an empty working copy, loads every landing file and publishes a new served file."
            )
        else:
            _create_empty(work)
            _prepare(work)
    finally:
        lock.release()
    return work


def _prepare(path: Path) -> str | None:
    """Open the working copy, check it, create what is missing of raw.* and audit.*; why it is damaged, or None.

    Errors that are not damage (a lock another process holds, a full disk) are raised as they are.
    """
    import duckdb

    _writable(path)
    try:
        con = open_db(path)
    except duckdb.Error as exc:
        reason = damage_reason(exc)
        if reason is None:
            raise
        return reason
    try:
        reason = truncation(con, path)
        if reason is None:
            create_raw_tables(con)
    except duckdb.Error as exc:
        reason = damage_reason(exc)
        if reason is None:
            raise
    finally:
        con.close()
    return reason


def _copy_served(settings: Settings, damaged: tuple[Path, str] | None) -> None:
    """With the working-copy lock held: copy the served file to the missing working copy, checked.

    A copy that cannot be read means the served file is damaged too (BI tools cannot read it
    either), and there is nothing left to build on: `WarehouseDamaged`, saying what to do.
    """
    work, served = settings.working_path, settings.warehouse_path
    _atomic_copy(served, work)
    reason = _prepare(work)
    if reason is None:
        return
    work.unlink(missing_ok=True)  # a copy of the damaged served file: nothing to inspect that the original lacks
    discard_wal(work)
    reason = reason.replace(str(work), str(served))  # the copy's bytes are the served file's
    what = (f"The working copy {work} could not be read ({damaged[1]}; kept as {damaged[0]}), and the served file "
            if damaged else "There is no working copy, and the served file ")
    raise WarehouseDamaged(
        f"{what}{served} is damaged too ({reason}): there is no readable copy of the warehouse to build on, "
        "and BI tools cannot read the served file either.\n"
        f"The landing files in {settings.landing_dir} are intact (builds never modify them): rebuild the warehouse "
        "from them.\n"
        f"  1. move the damaged served file away: mv '{served}' '{served}.damaged'\n"
        "  2. run `make run` again: it starts an empty working copy, loads every landing file and publishes a new "
        "served file.\n"
        "Or start from scratch with `make clean && make run` (the default data/ paths; it also removes Dagster's "
        "record of the builds, the exports and the damaged files)."
    )


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
        serve(work, settings)
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
    discard_wal(tmp)  # e.g. left by a killed build that had the same pid (containers reuse pids)
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
    serve(tmp, settings)


def _main(argv: list[str]) -> int:
    """`refresh <served path> <lock fd>`: the background copy `publish` starts."""
    if len(argv) == 3 and argv[0] == "refresh":
        served, fd = Path(argv[1]), int(argv[2])
        # the copy runs beside the build's last steps (the Parquet export, the report): on a 2-core
        # machine at even priority it took a core from them, while nothing waits for it until
        # the next build starts
        os.nice(10)
        settings = Settings(landing_dir=served.parent, warehouse_path=served)
        try:
            refresh_working_copy(settings, lock_held=True)
        except Exception as exc:  # e.g. a full disk; its partial copy is removed already
            record_copy_failure(settings, exc)  # still holding the lock: the next build reads it whole
            return 1
        finally:
            os.close(fd)  # the last descriptor of publish's lock: the next build may go on
        return 0
    print("usage: python -m dagster_project.lib.warehouse.working_copy refresh <served warehouse path> <lock fd>", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
