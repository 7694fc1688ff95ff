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
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dagster_project.lib.warehouse.build_lock import CLI_PID_TAG as PID_TAG, BuildLock, BuildLockTimeout
from dagster_project.lib.settings import PROJECT_ROOT, export_to_environ


def dagster_home() -> Path:
    """$DAGSTER_HOME (default data/dagster_home), created with the project's dagster.yaml."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / "data" / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    return home


def _instance():
    """The Dagster instance of $DAGSTER_HOME: the one `make dev`'s UI shows."""
    from dagster import DagsterInstance

    dagster_home()
    return DagsterInstance.get()


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
        from dagster_project.lib.warehouse.notices import collecting

        from dagster_project.defs.jobs import build_in_process

        job = defs.resolve_job_def("build_warehouse")
        # what the build says about the warehouse files (a damaged copy rebuilt, a WAL set aside):
        # in the runs' logs, and again in the report, where Dagster's debug lines do not bury it
        with _instance() as instance, collecting() as notices:
            for released in release_dead_runs(instance, lock):
                print(released.describe())
            # the ingest, then one run per range of the months it left to build (defs/jobs.py)
            result = build_in_process(
                job, defs.resolve_asset_graph(), instance, files=args.files or None, tags={PID_TAG: str(os.getpid())}
            )
            if result.plan.ranges:
                print(f"months built: {result.plan.label()} ({len(result.runs)} run(s): {', '.join(result.run_ids)})")
    finally:
        lock.release()
    elapsed = time.perf_counter() - started
    return print_run_report(settings, result, elapsed, notices)


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
