"""A run launched in the Dagster UI while `make run` builds, and `make run` started while a UI
run is in progress, under a real `dagster dev` (issue 18, case 8).

Both write the one working copy, and Dagster's pool serialises steps, not runs: a UI run's steps
could fall between those of make run's runs, and one run's publish carry the other's dbt output,
which its own gate had not checked. Every run that is not a CLI build's now holds
`$DAGSTER_HOME/cli_build.lock` for the whole run (defs/resources.py) and `make run` holds it for
all its runs (cli.py): whichever comes second waits, saying why, then runs.

The run queue (one run in progress, dagster.yaml) counts make run's runs too, so a UI run launched
while make run builds leaves the queue only between two of its runs (or before its first, while
it loads the definitions), and then waits for the lock. Case A makes that moment certain: the UI
run has just left the queue (its process is starting) when make run starts and takes the lock.
Case B: a UI run has started a step when make run starts. The step timings of every run are read
back from the UI's GraphQL API: no run has a step within another run's, every publish follows its
own run's gate with nothing of another run in between, and the served marts are a clean build's.

The sensor build_months_after_ingest stays on, as by default: it leaves make run's ingests to
make run (their runs carry the CLI's pid tag).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import make_workspace
from gacc_files import copy_sample
from test_live_daemon import PHASE_DEADLINE, DagsterDev, _repository, dagster_dev
from test_quality_gate import marts_hash

from dagster_project.definitions import defs
from dagster_project.defs.jobs import INGEST_KEYS
from dagster_project.defs.quality.checks import PUBLISH_KEY, quality_gate
from dagster_project.lib.settings import PROJECT_ROOT
from dagster_project.lib.warehouse.build_lock import CLI_PID_TAG, BuildLock

pytestmark = pytest.mark.daemon

FIRST_MONTHS = ["202504", "202505", "202506"]  # the first `make run`
CASE_A_MONTHS = ["202507", "202508"]  # new downloads for the `make run` of case A
CASE_B_MONTHS = ["202509"]  # ... of case B
UI_MONTH = {"A": "2025-05", "B": "2025-06"}  # the month each UI run rebuilds
GATE = frozenset(quality_gate.check_keys)
LOCK_DEADLINE = 60  # seconds for make run to start and take the lock


@dataclass(frozen=True)
class RunLog:
    """A finished run as the UI shows it: its tags, its steps' (start, end) and its log."""

    run_id: str
    status: str
    tags: dict
    steps: dict[str, tuple[float, float]]
    events: list[dict]

    @property
    def who(self) -> str:
        if CLI_PID_TAG in self.tags:
            return f"make run (pid {self.tags[CLI_PID_TAG]})"
        return f"sensor {self.tags['dagster/sensor_name']}" if "dagster/sensor_name" in self.tags else "UI"

    @property
    def span(self) -> tuple[float, float]:
        return min(a for a, _ in self.steps.values()), max(b for _, b in self.steps.values())

    def logged(self, text: str) -> list[str]:
        return [e["message"] for e in self.events if text in e.get("message", "")]

    def times(self, typename: str, keep=lambda e: True) -> list[float]:
        return [int(e["timestamp"]) / 1000 for e in self.events if e["__typename"] == typename and keep(e)]

    def describe(self, t0: float) -> str:
        a, b = self.span
        return f"{self.run_id[:8]} {self.who:<22} {self.status:<7} steps {a - t0:6.1f} .. {b - t0:6.1f} s ({len(self.steps)})"


def _ui_selection() -> tuple[list, list]:
    """What a user selects in the asset graph to rebuild a month and publish it: everything after
    the ingest but the dbt docs (make run regenerates those only after a change to the project),
    with their checks and the whole quality gate."""
    graph = defs.resolve_asset_graph()
    assets = sorted((k for k in graph.materializable_asset_keys if k not in INGEST_KEYS and k.path != ["serving", "dbt_docs"]),
                    key=lambda k: k.path)
    checks = sorted({k for k in graph.asset_check_keys if k.asset_key in assets} | GATE, key=lambda k: (k.asset_key.path, k.name))
    return assets, checks


def _launch_ui_run(dev: DagsterDev, repo: dict, month: str) -> str:
    """What the Materialize button sends for one month of the selected assets."""
    assets, checks = _ui_selection()
    data = dev.gql(
        """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
            __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message }
            ... on RunConfigValidationInvalid { errors { message } } } }""",
        {"params": {
            "selector": {
                "repositoryLocationName": repo["location"]["name"], "repositoryName": repo["name"],
                "pipelineName": "build_warehouse",
                "assetSelection": [{"path": k.path} for k in assets],
                "assetCheckSelection": [{"assetKey": {"path": k.asset_key.path}, "name": k.name} for k in checks],
            },
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": month}]},
        }},
    )["launchRun"]
    assert data["__typename"] == "LaunchRunSuccess", data
    return data["run"]["runId"]


def _run(dev: DagsterDev, run_id: str) -> dict:
    run = dev.gql("""query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status tags { key value }
        stepStats { stepKey startTime endTime } } } }""", {"id": run_id})["runOrError"]
    assert run["__typename"] == "Run", run
    assert run["status"] not in ("FAILURE", "CANCELING", "CANCELED"), f"run {run_id} {run['status']}\n{dev.log_tail()}"
    return run


def _events(dev: DagsterDev, run_id: str) -> list[dict]:
    events, cursor = [], None
    while True:
        page = dev.gql(
            """query($id: ID!, $cursor: String) { logsForRun(runId: $id, afterCursor: $cursor, limit: 1000) {
                __typename ... on EventConnection { cursor hasMore events { __typename
                    ... on MessageEvent { message timestamp stepKey }
                    ... on MaterializationEvent { assetKey { path } }
                    ... on AssetCheckEvaluationEvent { evaluation { checkName assetKey { path } } } } } } }""",
            {"id": run_id, "cursor": cursor})["logsForRun"]
        assert page["__typename"] == "EventConnection", page
        events += page["events"]
        if not page["hasMore"]:
            return events
        cursor = page["cursor"]


def _run_log(dev: DagsterDev, run_id: str) -> RunLog:
    run = _run(dev, run_id)
    steps = {s["stepKey"]: (s["startTime"], s["endTime"]) for s in run["stepStats"]}
    assert steps and all(a and b for a, b in steps.values()), f"run {run_id}: a step without a start or an end: {steps}"
    return RunLog(run_id, run["status"], {t["key"]: t["value"] for t in run["tags"]}, steps, _events(dev, run_id))


def _wait_until(what: str, seconds: float, done, detail=lambda: "") -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"{what} after {seconds:.0f} s\n{detail()}"
        time.sleep(0.2)


class MakeRun:
    """`make run` (python -m dagster_project.cli build) in a subprocess on the UI's instance."""

    def __init__(self, dev: DagsterDev, landing: Path, warehouse: Path, name: str):
        self.log = dev.home.parent / f"make_run_{name}.log"
        env = dict(os.environ, DAGSTER_HOME=str(dev.home), CUSTOMS_LANDING_DIR=str(landing), WAREHOUSE_PATH=str(warehouse))
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "dagster_project.cli", "build"], env=env, cwd=PROJECT_ROOT,
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid, self.name = self.proc.pid, name

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def finish(self) -> str:
        """Its output, once it has exited 0."""
        try:
            self.proc.wait(timeout=PHASE_DEADLINE)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"{self.name}: make run had not finished after {PHASE_DEADLINE} s\n{self.output()[-3000:]}")
        assert self.proc.returncode == 0, f"{self.name}: make run exited {self.proc.returncode}\n{self.output()[-3000:]}"
        return self.output()


def test_a_ui_run_and_make_run_take_turns(tmp_path, monkeypatch):
    started = time.monotonic()
    live = tmp_path / "live"
    landing, warehouse = live / "landing", live / "wh" / "warehouse.duckdb"
    landing.mkdir(parents=True)
    copy_sample(landing, months=FIRST_MONTHS)
    ui, cli, out = {}, {}, {}

    with dagster_dev(live, landing, warehouse) as dev:
        try:
            repo = _repository(dev)
            lock = BuildLock.for_dagster_home(dev.home)
            cli["first"] = MakeRun(dev, landing, warehouse, "first")
            cli["first"].finish()  # a served file to start from

            # A. new downloads; a UI run of May leaves the queue, and make run starts meanwhile
            copy_sample(landing, months=CASE_A_MONTHS)
            ui["A"] = _launch_ui_run(dev, repo, UI_MONTH["A"])
            _wait_until(f"A: UI run {ui['A']} had not left the queue", PHASE_DEADLINE,
                        lambda: _run(dev, ui["A"])["status"] != "QUEUED", dev.log_tail)
            cli["A"] = MakeRun(dev, landing, warehouse, "A")
            _wait_until("A: make run had neither taken the build lock nor started waiting for it", LOCK_DEADLINE,
                        lambda: lock.holder_pid() == cli["A"].pid or "another build" in cli["A"].output()
                        or cli["A"].proc.poll() is not None, cli["A"].output)
            assert "another build" not in cli["A"].output(), (
                f"A: the UI run's process took the lock before make run did (it started faster than make run):\n{cli['A'].output()}")
            out["A"] = cli["A"].finish()
            _wait_until(f"A: UI run {ui['A']} had not succeeded", PHASE_DEADLINE,
                        lambda: _run(dev, ui["A"])["status"] == "SUCCESS", dev.log_tail)
            hash_a = marts_hash(warehouse, figures_only=True)

            # B. a UI run of June has started a step; more downloads, and make run starts
            ui["B"] = _launch_ui_run(dev, repo, UI_MONTH["B"])
            _wait_until(f"B: UI run {ui['B']} had not started a step", PHASE_DEADLINE,
                        lambda: any(s["startTime"] for s in _run(dev, ui["B"])["stepStats"]), dev.log_tail)
            copy_sample(landing, months=CASE_B_MONTHS)
            cli["B"] = MakeRun(dev, landing, warehouse, "B")
            out["B"] = cli["B"].finish()
            _wait_until(f"B: UI run {ui['B']} had not succeeded", PHASE_DEADLINE,
                        lambda: _run(dev, ui["B"])["status"] == "SUCCESS", dev.log_tail)
            hash_b = marts_hash(warehouse, figures_only=True)

            runs = [_run_log(dev, r.run_id) for r in dev.runs()]
        finally:
            for make_run in cli.values():  # a failed wait leaves none running
                make_run.stop()
    assert not dev.survivors, "dagster dev left processes running:\n" + "\n".join(dev.survivors)
    live_seconds = time.monotonic() - started

    runs.sort(key=lambda r: r.span)
    t0 = runs[0].span[0]
    table = "\n".join(r.describe(t0) for r in runs)
    by_id = {r.run_id: r for r in runs}
    of_cli = {case: [r for r in runs if r.tags.get(CLI_PID_TAG) == str(c.pid)] for case, c in cli.items()}
    assert all(r.status == "SUCCESS" for r in runs), table
    # each make run's runs (an ingest, then the months) and the two UI runs, nothing else
    expected = [f"make run (pid {cli[case].pid})" for case in ("first", "first", "A", "A")] + ["UI", "UI"] + [
        f"make run (pid {cli['B'].pid})"] * 2
    assert [r.who for r in runs] == expected, table
    assert [r.run_id for r in runs if r.who == "UI"] == [ui["A"], ui["B"]], table

    # No step of one run within another: the runs, not only their steps, take turns
    for before, after in zip(runs, runs[1:]):
        assert before.span[1] <= after.span[0], f"{before.run_id} and {after.run_id} overlap\n{table}"

    # A. make run took the lock without waiting (checked above); the UI run waited for it, saying
    #    so, and its first step started after make run's last step
    waited = by_id[ui["A"]].logged("waiting for the build that holds")
    assert waited and f"(pid {cli['A'].pid}) to finish" in waited[0], (waited, table)
    assert by_id[ui["A"]].span[0] >= max(r.span[1] for r in of_cli["A"]), table

    # B. make run waited for the UI run's process (the pid in its message) and built after it
    said = re.search(r"another build \(pid (\d+)\) is running on DAGSTER_HOME=\S+; waiting for it to finish", out["B"])
    assert said, out["B"][:2000]
    assert by_id[ui["B"]].logged(f"(pid: {said[1]})"), f"make run waited for pid {said[1]}, not the UI run's process"
    assert min(r.span[0] for r in of_cli["B"]) >= by_id[ui["B"]].span[1], table

    # What a run publishes is what its own gate checked: the whole gate evaluated in the run
    # before the publish, and no step of another run from the run's first step to the publish
    def published_at(run: RunLog) -> list[float]:
        return run.times("MaterializationEvent", lambda e: e["assetKey"]["path"] == PUBLISH_KEY.path)

    publishing = [r for r in runs if published_at(r)]
    assert [r.run_id for r in publishing] == [of_cli["first"][-1].run_id, of_cli["A"][-1].run_id, ui["A"], ui["B"],
                                              of_cli["B"][-1].run_id], table
    gate_keys = {(tuple(k.asset_key.path), k.name) for k in GATE}
    for run in publishing:
        [published] = published_at(run)
        checked = {(tuple(e["evaluation"]["assetKey"]["path"]), e["evaluation"]["checkName"]): int(e["timestamp"]) / 1000
                   for e in run.events if e["__typename"] == "AssetCheckEvaluationEvent"}
        checked = {k: t for k, t in checked.items() if k in gate_keys}
        assert checked.keys() == gate_keys and max(checked.values()) < published, (run.run_id, checked, published)
        window = (run.span[0], published)
        intruders = [(o.run_id, step, a, b) for o in runs if o is not run for step, (a, b) in o.steps.items()
                     if a < window[1] and window[0] < b]
        assert not intruders, f"steps of other runs between {run.run_id}'s first step and its publish: {intruders}\n{table}"

    # The served marts equal a clean build's of the same files
    clean = make_workspace(tmp_path / "clean")
    monkeypatch.setenv("CUSTOMS_LANDING_DIR", str(clean.landing))  # restored after the test (Workspace.build sets them)
    monkeypatch.setenv("WAREHOUSE_PATH", str(clean.warehouse))
    copy_sample(clean.landing, months=FIRST_MONTHS + CASE_A_MONTHS)
    assert clean.build().success
    assert hash_a == marts_hash(clean.warehouse, figures_only=True), "after A the served marts differ from a clean build's"
    copy_sample(clean.landing, months=CASE_B_MONTHS)
    assert clean.build().success
    assert hash_b == marts_hash(clean.warehouse, figures_only=True), "after B the served marts differ from a clean build's"

    print(f"\nlive dagster dev: {live_seconds:.0f} s (t = 0 at the first step of the first make run)\n{table}")
