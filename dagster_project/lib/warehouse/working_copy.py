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

from dagster_project.lib.warehouse.build_lock import BuildLock
from dagster_project.lib.settings import DUCKDB_MEMORY_LIMIT, PROJECT_ROOT, STORAGE_VERSION, Settings

if TYPE_CHECKING:  # imported where a connection is opened: the background copy (`refresh`) needs no DuckDB
    import duckdb

RAW_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SEQUENCE IF NOT EXISTS raw.load_seq START 1;
CREATE TABLE IF NOT EXISTS raw.customs_loads (
    load_id           VARCHAR PRIMARY KEY,
    load_seq          BIGINT NOT NULL,
    file_path         VARCHAR NOT NULL,   -- relative to the landing directory
    file_sha256       VARCHAR NOT NULL,
    file_size_bytes   BIGINT NOT NULL,
    flow              VARCHAR NOT NULL,   -- exports | imports (the landing sub-folder)
    encoding          VARCHAR NOT NULL,
    header_language   VARCHAR NOT NULL,
    currency          VARCHAR NOT NULL,   -- USD | CNY
    dimensions        VARCHAR NOT NULL,   -- e.g. 'hs8,partner' or 'hs8,partner,regime'
    period_source     VARCHAR NOT NULL,   -- column | file name
    period_start      DATE NOT NULL,
    period_end        DATE NOT NULL,
    row_count         BIGINT NOT NULL,
    unit_conversions  VARCHAR,
    warnings          VARCHAR,
    dagster_run_id    VARCHAR,
    loaded_at         TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.customs_rows (
    load_id             VARCHAR NOT NULL,
    source_file         VARCHAR NOT NULL,
    file_sha256         VARCHAR NOT NULL,
    loaded_at           TIMESTAMP NOT NULL,
    row_number          BIGINT NOT NULL,      -- data row in the file (line = row_number + 1)
    flow                VARCHAR NOT NULL,
    currency            VARCHAR NOT NULL,
    period_start        DATE NOT NULL,
    period_end          DATE NOT NULL,
    is_cumulative       BOOLEAN NOT NULL,
    hs8                 VARCHAR NOT NULL,
    commodity_name      VARCHAR,
    partner_code        VARCHAR NOT NULL,
    partner_name        VARCHAR,
    regime_code         VARCHAR,
    regime_name         VARCHAR,
    province_code       VARCHAR,
    province_name       VARCHAR,
    quantity            DECIMAL(38, 4),       -- as written, in `unit`
    unit                VARCHAR,              -- as written
    unit_code           VARCHAR,              -- GACC unit code of `unit`
    declared_unit_code  VARCHAR,              -- the commodity's first unit
    unit_factor         DECIMAL(38, 6),       -- quantity * unit_factor = quantity in the declared unit
    quantity2           DECIMAL(38, 4),
    unit2               VARCHAR,
    value               DECIMAL(38, 4)        -- in `currency`
);
-- Each landing file's SHA-256 and the file status it was computed for: a build reads again
-- only the files that changed since (lib/ingest.py, _LandingHashes).
CREATE TABLE IF NOT EXISTS raw.landing_file_hashes (
    file_path     VARCHAR NOT NULL,   -- relative to the landing directory
    size_bytes    BIGINT NOT NULL,
    mtime_ns      BIGINT NOT NULL,
    ctime_ns      BIGINT NOT NULL,
    inode         BIGINT NOT NULL,
    file_sha256   VARCHAR NOT NULL,
    hashed_at     TIMESTAMP NOT NULL
);
-- Loads the marts were successfully built from: the watermark of incremental dbt builds.
CREATE TABLE IF NOT EXISTS raw.customs_loads_built (
    load_id        VARCHAR PRIMARY KEY,
    built_at       TIMESTAMP NOT NULL,
    dagster_run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS audit.rejected_files (
    file_path    VARCHAR NOT NULL,
    file_sha256  VARCHAR,
    reason       VARCHAR NOT NULL,
    rejected_at  TIMESTAMP NOT NULL,
    dagster_run_id VARCHAR
);
-- Row count and hash sum per month of the large marts: dbt hooks record the months an incremental
-- build writes (dbt/macros/month_fingerprints.sql); the Parquet export reads them.
CREATE TABLE IF NOT EXISTS audit.mart_month_fingerprints (
    table_name    VARCHAR NOT NULL,
    month         DATE NOT NULL,
    row_count     BIGINT NOT NULL,
    row_hash_sum  HUGEINT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit.check_results (
    run_id      VARCHAR NOT NULL,
    check_name  VARCHAR NOT NULL,
    asset_key   VARCHAR NOT NULL,
    severity    VARCHAR NOT NULL,
    passed      BOOLEAN NOT NULL,
    observed    VARCHAR,
    checked_at  TIMESTAMP NOT NULL,
    description VARCHAR,
    failing_sample VARCHAR
);
"""

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
        con.execute(f"ATTACH '{_sql_str(path)}' AS fresh (STORAGE_VERSION '{STORAGE_VERSION}')")
        con.execute("USE fresh")
        con.execute(RAW_DDL)
        con.execute("USE memory")
        con.execute("DETACH fresh")
    finally:
        con.close()


def _sql_str(path: Path | str) -> str:
    return str(path).replace("'", "''")


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (a power cut after os.replace keeps the new name)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not supported here (e.g. Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace(tmp: Path, dst: Path) -> None:
    """Put `tmp` in place of `dst` in one atomic rename, without `dst`'s old WAL."""
    _discard_wal(dst)
    os.replace(tmp, dst)
    _fsync_dir(dst.parent)


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
            con.execute(RAW_DDL)
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


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """A base table `schema.table` in the connection's databases (views do not count)."""
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = $s AND table_name = $t", {"s": schema, "t": table}
    ).fetchone()[0])


def open_db(path: Path | str | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection under CUSTOMS_DUCKDB_MEMORY_LIMIT (None: in memory).

    Every connection of the Dagster process goes through here: DuckDB's default is 80% of the
    machine's RAM per connection, which a national-size export or checkpoint would take.
    """
    import duckdb

    return duckdb.connect(":memory:" if path is None else str(path), read_only=read_only,
                          config={"memory_limit": DUCKDB_MEMORY_LIMIT})


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
        con.execute(f"ATTACH '{_sql_str(settings.working_path)}' AS work (READ_ONLY)")
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
