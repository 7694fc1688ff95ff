"""`make run`: build the whole warehouse headlessly through Dagster and report what happened.

Runs the `build_warehouse` job in this process against the Dagster instance in
$DAGSTER_HOME (default data/dagster_home), so the run also shows in `make dev`'s UI.
One CLI build at a time per $DAGSTER_HOME: a build holds `$DAGSTER_HOME/cli_build.lock`
while it runs, and a second one waits for it (or gives up after --lock-timeout seconds).
Exit status: 0 when the build succeeded and nothing was rejected; 1 otherwise; 2 when
--lock-timeout ran out while another build was running.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.lib.warehouse.build_lock import BuildLock, BuildLockTimeout
from dagster_project.lib.settings import PROJECT_ROOT, dbt_target_dir, export_to_environ


def dagster_home() -> Path:
    """$DAGSTER_HOME (default data/dagster_home), created with the project's dagster.yaml."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / "data" / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    return home


POOLED_EVENT_LOG = {"module": "dagster_project.lib.event_log", "class": "PooledSqliteEventLogStorage"}


def _instance():
    """The $DAGSTER_HOME instance; its default SQLite event log keeps its connections open here.

    A headless build writes its few hundred events from this one process: lib/event_log.py saves
    a connect, checkpoint and close per event. A dagster.yaml that names its own storage is used as written.
    """
    import yaml
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    home = dagster_home()
    config = yaml.safe_load((home / "dagster.yaml").read_text()) or {}
    if "storage" in config or "event_log_storage" in config:
        return DagsterInstance.get()
    overrides = {"event_log_storage": {**POOLED_EVENT_LOG, "config": {"base_dir": str(home / "history" / "runs")}}}
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=overrides))


PID_TAG = "customs/cli_pid"
UNFINISHED = ("STARTED", "STARTING", "NOT_STARTED")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class ReleasedRun:
    run_id: str
    pid: str | None  # the pid the dead build had (customs/cli_pid)
    pid_reused: bool  # that pid is alive now: another process got it (e.g. after a restart)

    def describe(self) -> str:
        if self.pid is None:
            who = "its build process is gone"
        elif self.pid_reused:
            who = f"its build process (pid {self.pid}, a number another process has now) is gone"
        else:
            who = f"its build process (pid {self.pid}) is gone"
        return f"released run {self.run_id}: {who}, killed or crashed; marked failed, pool slot freed; this build redoes its work"


def release_dead_runs(instance, lock: BuildLock) -> list[ReleasedRun]:
    """Mark failed, and free the pool slots of, every run a CLI build left unfinished.

    A CLI build killed by kill -9, the OOM killer or a reboot leaves its run STARTED and its
    `duckdb_warehouse` pool slot claimed in $DAGSTER_HOME; the next build would wait for that
    slot forever. Only a caller holding `lock` (this $DAGSTER_HOME's build lock) may call
    this: holding it proves no other CLI build is alive, so every CLI-tagged run still
    STARTED/STARTING/NOT_STARTED is dead, whether or not its pid was since reused. Runs
    without the CLI's tag (launched from the UI, `make dev`) are left alone.
    """
    from dagster import DagsterRunStatus, RunsFilter

    if not lock.held:
        raise RuntimeError(f"release_dead_runs needs the build lock {lock.path}: without it a live build's run would be failed")
    released = []
    runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus(s) for s in UNFINISHED]))
    for run in runs:
        if PID_TAG not in run.tags:
            continue
        pid = run.tags[PID_TAG]
        reused = pid.isdigit() and _pid_alive(int(pid))
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        detail = f" (pid {pid}; that number now belongs to another process)" if reused else f" (pid {pid})"
        instance.report_run_failed(
            run, message=f"the CLI build running it{detail} is gone: killed or crashed; a later build found it unfinished"
        )
        released.append(ReleasedRun(run.run_id, pid or None, reused))
    return released


# --------------------------------------------------------------------------- dbt/target

# dagster-dbt gives every dbt invocation its own target folder (DbtCliResource's
# `_get_unique_target_path`): `<op name>-<run id[:7]>-<uuid[:7]>` when called with a context
# (the `customs_dbt_models` build, ~5 MB: manifest, partial parse, compiled and run SQL,
# run_results, dbt.log) and `<uuid[:7]>` without one (`dbt docs generate`, ~7 MB with the
# catalog and static page). Nothing reads them once the asset that ran dbt has finished:
# dagster_dbt reads its artifacts during the step, and serving/dbt_docs copies the docs out
# into data/docs at once. They are never removed, hence this pruning.
INVOCATION_DIR = re.compile(r"^(?:(?P<op>[A-Za-z0-9_]+)-[0-9a-f]{7}-)?[0-9a-f]{7}$")
KEEP_DBT_INVOCATIONS = 3  # per kind (each op's folders, and the context-free ones)
# A folder touched this recently may belong to a dbt that another build (another
# DAGSTER_HOME: tests, benchmarks) is running right now: leave it.
DBT_INVOCATION_GRACE_S = 3600.0


def _activity(path: Path) -> tuple[float, int]:
    """The latest mtime in the tree (dbt.log grows while dbt runs) and its size in bytes."""
    latest, size = path.lstat().st_mtime, 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            latest = max(latest, st.st_mtime)
            if name in files:
                size += st.st_size
    return latest, size


@dataclass
class Pruned:
    removed: list[Path] = field(default_factory=list)
    bytes: int = 0
    kept: int = 0


def prune_dbt_target(
    target_dir: Path | None = None,
    keep: int = KEEP_DBT_INVOCATIONS,
    grace_s: float = DBT_INVOCATION_GRACE_S,
    now: float | None = None,
) -> Pruned:
    """Remove dagster-dbt's per-invocation folders from dbt/target but the newest `keep` of
    each kind and any touched in the last `grace_s` seconds.

    Only folders named as dagster-dbt names them are considered: manifest.json,
    partial_parse.msgpack and everything else `dbt parse` and `make` put in the target folder
    stay. Never raises for a folder that vanished or cannot be removed (another build's prune).
    """
    target_dir = Path(target_dir) if target_dir is not None else dbt_target_dir()
    now = time.time() if now is None else now
    result = Pruned()
    groups: dict[str, list[tuple[float, int, Path]]] = {}
    try:
        entries = list(os.scandir(target_dir))
    except FileNotFoundError:
        return result
    for entry in entries:
        match = INVOCATION_DIR.match(entry.name)
        if not match or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            latest, size = _activity(Path(entry.path))
        except FileNotFoundError:
            continue
        groups.setdefault(match.group("op") or "", []).append((latest, size, Path(entry.path)))
    for folders in groups.values():
        folders.sort(key=lambda f: f[0], reverse=True)
        for i, (latest, size, path) in enumerate(folders):
            if i < keep or now - latest < grace_s:
                result.kept += 1
                continue
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                result.removed.append(path)
                result.bytes += size
            else:
                result.kept += 1
    return result


# --------------------------------------------------------------------------- build


def build(args: argparse.Namespace) -> int:
    settings = export_to_environ()
    started = time.perf_counter()
    home = dagster_home()
    lock = BuildLock.for_dagster_home(home)

    def waiting(pid: int | None) -> None:
        who = f"pid {pid}" if pid else "pid unknown"
        print(f"another build ({who}) is running on DAGSTER_HOME={home}; waiting for it to finish "
              f"(it holds {lock.path})", flush=True)

    try:
        lock.acquire(timeout=args.lock_timeout, on_wait=waiting)
    except BuildLockTimeout as exc:
        print(f"not building: {exc}", file=sys.stderr)
        return 2
    try:
        from dagster_project.definitions import defs
        from dagster_project.lib.serving.run_report import print_run_report

        from dagster_project.defs.jobs import build_in_process
        from dagster_project.defs.partitions import months_of_range
        from dagster_project.lib.transform.months_to_build import month_ranges

        job = defs.resolve_job_def("build_warehouse")
        with _instance() as instance:
            for released in release_dead_runs(instance, lock):
                print(released.describe())
            # the ingest, then one run per range of the months it left to build (defs/jobs.py)
            result = build_in_process(
                job, defs.resolve_asset_graph(), instance, files=args.files or None, tags={PID_TAG: str(os.getpid())}
            )
            if result.ranges:
                months = [m for r in result.ranges for m in months_of_range(r.start, r.end)]
                print(f"months built: {month_ranges(months)} ({len(result.runs)} run(s): {', '.join(result.run_ids)})")
        try:
            pruned = prune_dbt_target()
            if pruned.removed:
                print(f"removed {len(pruned.removed)} old dbt invocation folder(s) ({pruned.bytes / 2**20:.0f} MB) "
                      f"from {dbt_target_dir()}; kept {pruned.kept}")
        except OSError as exc:  # housekeeping never fails a build
            print(f"warning: could not prune {dbt_target_dir()}: {exc}", file=sys.stderr)
    finally:
        lock.release()
    elapsed = time.perf_counter() - started
    return print_run_report(settings, result, elapsed)


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dagster_project.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("build", help="load new extracts, build, check and publish the warehouse")
    run.add_argument("--files", nargs="*", help="only these landing files (paths relative to the landing directory)")
    run.add_argument("--lock-timeout", type=_seconds, default=None, metavar="SECONDS",
                     help="when another build of this DAGSTER_HOME is running, give up (exit 2) after this "
                          "many seconds (0: at once) instead of waiting for it")
    run.set_defaults(func=build)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    status = main()
    # Tearing down Dagster's and dbt's millions of objects one by one at exit takes ~2 s per
    # build; frozen objects are skipped by the collector (exit handlers still run).
    gc.freeze()
    sys.exit(status)
