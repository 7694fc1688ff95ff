"""One `make run`-like build (`python -m dagster_project.cli build`), measured and read back.

A build is several Dagster runs (defs/jobs.py): the ingest, then one run per range of months
Dagster's record says to build, the last with the quality gate and the serving steps. Every
build of a work folder uses the same DAGSTER_HOME (`<work>/dagster_home`), so a second build
there is planned from the first one's materialisations, as `make run` is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from measure import ROOT, Measured, parse_duration, run_measured

VENV_PY = ROOT / ".venv" / "bin" / "python"
PY = str(VENV_PY if VENV_PY.exists() else Path(sys.executable))

# A Dagster log line: time, run id, then the step (if any) and the event.
_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) [+-]\d{4} - dagster - \w+ - \S+ - ([0-9a-f-]{36}) - \d+ - (.*)$", re.M)


def step_name(key: str) -> str:
    """The op behind a step key. A run of part of a multi-asset (the two dbt assets, the quality
    gate's checks) splits it into steps `name`, `name_2`, `name_3` ...: their times add up."""
    return re.sub(r"_\d+$", "", key)


@dataclass
class Build:
    measured: Measured
    run_id: str | None  # the last run (the one with the quality gate and the serving steps)
    success: bool
    reported_s: float | None  # what the CLI prints ("SUCCESS in 50.9 s")
    steps: dict[str, float] = field(default_factory=dict)  # by op (step_name), summed over the runs
    run_ids: list[str] = field(default_factory=list)  # every run of the build, in order
    months_built: str | None = None  # the CLI's "months built: ..." (the plan made from Dagster's record)
    dbt_nodes: list = field(default_factory=list)  # (unique_id, seconds) from run_results.json
    dbt_elapsed_s: float | None = None
    # after the CLI exits: the working copy copied back from the served file by the process
    # publish starts in the background (the bench waits for it, so no measurement overlaps it)
    background_copy_s: float | None = None
    files_hashed: int | None = None  # landing files the ingest read to hash (the others' hashes were kept)

    @property
    def orchestration_s(self) -> float:
        """Wall time outside every step: interpreter start, imports, definitions, run start/end, report."""
        return self.measured.wall_s - sum(self.steps.values())

    @property
    def dbt_s(self) -> float:
        return sum(v for k, v in self.steps.items() if k in DBT_STEPS)

    @property
    def serving_s(self) -> float:
        return sum(v for k, v in self.steps.items() if k.startswith("serving"))


DBT_STEPS = ("customs_monthly_models", "customs_dbt_models")


def parse_build(measured: Measured) -> Build:
    out = measured.output
    m = re.search(r"Run ([0-9a-f-]{36}): (SUCCESS|FAILURE) in ([\d.]+) s", out)
    build = Build(measured, m.group(1) if m else None, bool(m and m.group(2) == "SUCCESS"), float(m.group(3)) if m else None)
    m = re.search(r"^months built: (.*) \(\d+ run\(s\)", out, re.M)
    build.months_built = m.group(1) if m else None
    m = re.search(r"(\d+) file\(s\) hashed", out)
    build.files_hashed = int(m.group(1)) if m else None
    started: dict[tuple[str, str], dt.datetime] = {}
    finished: set[tuple[str, str]] = set()
    engine_end: dict[str, dt.datetime] = {}
    for when, run, rest in _LINE.findall(out):
        if run not in build.run_ids:
            build.run_ids.append(run)
        at = dt.datetime.strptime(when, "%Y-%m-%d %H:%M:%S")
        if m := re.search(r'STEP_START - Started execution of step "([^"]+)"', rest):
            started[(run, m.group(1))] = at
        elif m := re.search(r'Finished execution of step "([^"]+)" in (\S+?)\.\s*$', rest):
            finished.add((run, m.group(1)))
            name = step_name(m.group(1))
            build.steps[name] = build.steps.get(name, 0.0) + parse_duration(m.group(2))
        elif m := re.search(r'Execution of step "([^"]+)" failed', rest):
            finished.add((run, m.group(1)))
            build.steps.setdefault(step_name(m.group(1)), float("nan"))
        elif "Finished steps in process" in rest:
            engine_end[run] = at
    # A step whose STEP_SUCCESS line is missing from the output (a run's last one sometimes is):
    # from its STEP_START to the end of its run's steps, to the second (the log's resolution).
    for (run, key), at in started.items():
        if (run, key) not in finished and run in engine_end:
            name = step_name(key)
            build.steps[name] = build.steps.get(name, 0.0) + (engine_end[run] - at).total_seconds()
    return build


def dbt_results(dbt_folders: Path, since: float) -> tuple[float | None, list]:
    """dbt's elapsed time and per-node times of the invocations written since `since`.

    One folder per dbt asset step (Settings.dbt_target), overwritten by each invocation: when
    a build runs a step more than once (one run per range of months), the last one is kept.
    """
    elapsed, nodes, found = 0.0, [], False
    for path in sorted(dbt_folders.glob("*/run_results.json")):
        if path.stat().st_mtime < since:
            continue
        data = json.loads(path.read_text())
        found = True
        elapsed += data.get("elapsed_time") or 0.0
        nodes.extend((r["unique_id"], r["execution_time"]) for r in data["results"])
    return (elapsed if found else None), sorted(nodes, key=lambda r: -r[1])


def cli_build(work: Path, landing: Path, log: Path) -> Build:
    """`python -m dagster_project.cli build` on `landing` into `<work>/warehouse.duckdb`."""
    from dagster_project.lib.settings import Settings
    from dagster_project.lib.warehouse.working_copy import wait_for_working_copy

    settings = Settings(landing_dir=landing, warehouse_path=work / "warehouse.duckdb")
    env = {"CUSTOMS_LANDING_DIR": str(landing), "WAREHOUSE_PATH": str(settings.warehouse_path),
           "DAGSTER_HOME": str(work / "dagster_home")}
    since = time.time()
    build = parse_build(run_measured([PY, "-m", "dagster_project.cli", "build"], log, env))
    build.dbt_elapsed_s, build.dbt_nodes = dbt_results(settings.dbt_target("-").parent, since)
    # A killed build leaves its run STARTED and its pool slot taken: the next CLI build of this
    # DAGSTER_HOME releases them itself (cli.release_dead_runs).
    started = time.perf_counter()
    wait_for_working_copy(settings)
    build.background_copy_s = time.perf_counter() - started
    return build
