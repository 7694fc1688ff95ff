"""`make run`: build the whole warehouse headlessly through Dagster and report what happened.

Runs the `build_warehouse` job in this process against the Dagster instance in
$DAGSTER_HOME (default data/dagster_home), so the run also shows in `make dev`'s UI.
Exit status: 0 when the build succeeded and nothing was rejected; 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .lib.settings import PROJECT_ROOT, export_to_environ


def _instance():
    from dagster import DagsterInstance

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / "data" / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    return DagsterInstance.get()


PID_TAG = "customs/cli_pid"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_runs(instance) -> list[str]:
    """Runs of this CLI whose process died (kill -9, OOM, reboot) still hold their pool slot in
    $DAGSTER_HOME; the next build would wait for it forever. Mark them failed and free it."""
    from dagster import DagsterRunStatus, RunsFilter

    released = []
    runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.NOT_STARTED]))
    for run in runs:
        pid = run.tags.get(PID_TAG)
        if pid is None or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        instance.report_run_failed(run, message=f"the process running it (pid {pid}) is gone: killed or crashed")
        released.append(run.run_id)
    return released


def build(args: argparse.Namespace) -> int:
    settings = export_to_environ()
    started = time.perf_counter()
    from .definitions import defs
    from .lib.report import print_run_report

    job = defs.resolve_job_def("build_warehouse")
    run_config = {"ops": {"raw_customs_extracts": {"config": {"files": args.files}}}} if args.files else None
    with _instance() as instance:
        for run_id in release_dead_runs(instance):
            print(f"released run {run_id}: its process was killed; this build redoes its work")
        result = job.execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False, tags={PID_TAG: str(os.getpid())}
        )
    elapsed = time.perf_counter() - started
    return print_run_report(settings, result, elapsed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dagster_project.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("build", help="load new extracts, build, check and publish the warehouse")
    run.add_argument("--files", nargs="*", help="only these landing files (paths relative to the landing directory)")
    run.set_defaults(func=build)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
