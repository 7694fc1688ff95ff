"""The month sensors under a real `dagster dev` (webserver, daemon, code server, run workers), as a
data engineer uses them: turn the landing sensor on in the UI (here: the same GraphQL mutation),
drop downloads into the landing directory, and the daemon ingests them, then builds the months
they touched as partitioned runs, and publishes the served DuckDB file.

The other sensor tests evaluate the sensors with build_sensor_context; this one checks what only a
live daemon does: the ticks, the run queue (one run at a time, dagster.yaml), the asset sensor
seeing the ingest's materialisation, the range tags reaching a run launched in its own process,
the served file holding the right figures afterwards, and the backfill daemon building a range of
months picked in the UI (the monthly models alone, then everything after the ingest). The served file is read only once the
runs have finished (no DuckDB lock can clash with a writer), and each read closes its connection
before more files land.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import make_workspace
from gacc_files import copy_sample
from test_quality_gate import marts_hash
from test_sensor_and_ui import _free_port

from dagster_project.definitions import defs
from dagster_project.defs.jobs import INGEST_KEYS
from dagster_project.defs.transform.dbt_assets import MONTHLY_KEYS

MONTHLY_ASSETS = {k.to_user_string() for k in MONTHLY_KEYS}
from dagster_project.lib.settings import PROJECT_ROOT

pytestmark = pytest.mark.daemon

LANDING_SENSOR = "landing_files_sensor"  # STOPPED by default
MONTHS_SENSOR = "build_months_after_ingest"  # RUNNING by default
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
FIRST_MONTHS = ["202504", "202505", "202506"]
NEW_MONTH = "202507"
BACKFILL_MONTHS = ["2025-05", "2025-06"]
# The sensors tick every 30 s (minimum_interval_seconds): a phase takes about a minute.
UI_DEADLINE = 180
PHASE_DEADLINE = 300

# Rare-earth permanent magnets (HS 85051110), world exports in kg: dbt/seeds/published_figures.csv
# (May, June, July 2025 quoted by Reuters/WSJ; April derived from May's -52.9% MoM).
WORLD_KG = {"2025-04": 2_628_000, "2025-05": 1_238_000, "2025-06": 3_188_000, "2025-07": 5_577_000}
WORLD_MOM_PCT = {"2025-05": -52.9, "2025-06": 157.5, "2025-07": 75}  # as quoted (rounded)


@dataclass(frozen=True)
class Run:
    run_id: str
    status: str
    tags: dict

    @property
    def sensor(self) -> str | None:
        return self.tags.get("dagster/sensor_name")

    @property
    def range(self) -> tuple[str | None, str | None]:
        return self.tags.get(RANGE_START), self.tags.get(RANGE_END)

    def describe(self) -> str:
        extra = {k: v for k, v in self.tags.items() if k in (RANGE_START, RANGE_END, "landing_files", "customs/after_ingest_run")}
        return f"{self.run_id} {self.status:<9} sensor={self.sensor} {extra}"


def _survivors(pgid: int, home: Path, port: int) -> list[str]:
    """Live processes (not zombies) of the dagster dev process group, or naming its DAGSTER_HOME or
    port: what `pgrep -g <pgid>` and `pgrep -f <home>` would list, read from /proc (no procps needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if state == "Z":
            continue
        if int(pgrp) == pgid or str(home) in cmdline or (" dev " in cmdline and f"-p {port} " in f"{cmdline} "):
            found.append(f"{entry.name}: {cmdline[:160]}")
    return found


class DagsterDev:
    """A `dagster dev` in its own session, and its GraphQL API."""

    def __init__(self, proc: subprocess.Popen, port: int, home: Path, log: Path):
        self.proc, self.port, self.home, self.log = proc, port, home, log
        self.survivors: list[str] = []

    def gql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        body = json.loads(urllib.request.urlopen(request, timeout=30).read())
        assert not body.get("errors"), f"GraphQL errors: {body['errors']}"
        return body["data"]

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        kept = [line for line in text.splitlines() if line.strip() and "warnings.warn(" not in line]
        return "\n".join(kept[-lines:])

    def runs(self) -> list[Run]:
        data = self.gql("""{ runsOrError { __typename
            ... on Runs { results { runId status tags { key value } } }
            ... on PythonError { message } } }""")["runsOrError"]
        assert data["__typename"] == "Runs", data
        return [Run(r["runId"], r["status"], {t["key"]: t["value"] for t in r["tags"]}) for r in data["results"]]

    def stop(self) -> None:
        """SIGTERM to the whole process group (a background `dagster dev` ignores a SIGTERM to itself
        alone), SIGKILL after a timeout, and to whatever of it outlives the leader by 15 s; what is
        alive after that is recorded in `survivors`."""
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait()
        deadline = time.monotonic() + 15  # the code server and run workers shut down after the leader
        while (left := _survivors(pgid, self.home, self.port)) and time.monotonic() < deadline:
            time.sleep(0.5)
        if left:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for line in left:  # outside the group but naming this DAGSTER_HOME or port: ours too
                try:
                    os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while (left := _survivors(pgid, self.home, self.port)) and time.monotonic() < deadline:
                time.sleep(0.2)
        self.survivors = left  # alive even after SIGKILL: what the test fails on


@contextmanager
def dagster_dev(root: Path, landing: Path, warehouse: Path):
    home = root / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    venv_bin = Path(sys.executable).parent
    env = dict(
        os.environ,
        DAGSTER_HOME=str(home),
        CUSTOMS_LANDING_DIR=str(landing),
        WAREHOUSE_PATH=str(warehouse),
        DAGSTER_DISABLE_TELEMETRY="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        GX_ANALYTICS_ENABLED="False",
        # as `make dev` runs it: the venv's dagster, the venv not activated. Under `dagster dev`,
        # dagster-dbt re-parses the dbt project when the definitions load, with the `dbt` on PATH:
        # dagster_project/defs/dbt_assets.py puts the venv's first
        PATH=os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != venv_bin),
    )
    log = root / "dagster_dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(venv_bin / "dagster"), "dev", "-m", "dagster_project.definitions", "-h", "127.0.0.1", "-p", str(port)],
            env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    dev = DagsterDev(proc, port, home, log)
    try:
        yield dev
    finally:
        dev.stop()


def _repository(dev: DagsterDev) -> dict:
    """The repository once the code location has loaded (fails at once with its error if it cannot)."""
    deadline = time.monotonic() + UI_DEADLINE
    while True:
        assert dev.proc.poll() is None, f"dagster dev exited ({dev.proc.returncode})\n{dev.log_tail()}"
        try:
            entries = dev.gql("""{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
                locationOrLoadError { __typename ... on PythonError { message errorChain { error { message } } } } } } } }""")[
                "workspaceOrError"]["locationEntries"]
        except (OSError, urllib.error.URLError, ValueError):
            entries = []  # the webserver is not up yet
        loaded = [e for e in entries if e["loadStatus"] == "LOADED" and e["locationOrLoadError"]]
        errors = [
            "\n".join([e["locationOrLoadError"]["message"], *(c["error"]["message"] for c in e["locationOrLoadError"]["errorChain"])])
            for e in loaded if e["locationOrLoadError"]["__typename"] == "PythonError"
        ]
        assert not errors, "the code location failed to load:\n" + "\n".join(errors)
        if loaded:
            break
        assert time.monotonic() < deadline, f"the code location did not load in {UI_DEADLINE} s\n{dev.log_tail()}"
        time.sleep(1)
    repos = dev.gql("""{ repositoriesOrError { __typename ... on RepositoryConnection {
        nodes { name location { name } sensors { name sensorState { status } } } } } }""")["repositoriesOrError"]
    [repo] = repos["nodes"]
    return repo


def _start_sensor(dev: DagsterDev, repo: dict, name: str) -> str:
    data = dev.gql(
        """mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
            __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }""",
        {"selector": {"repositoryLocationName": repo["location"]["name"], "repositoryName": repo["name"], "sensorName": name}},
    )["startSensor"]
    assert data["__typename"] == "Sensor", data
    return data["sensorState"]["status"]


def _wait_for_build(dev: DagsterDev, before: set[str], what: str) -> tuple[Run, list[Run], list[Run]]:
    """Poll until a new ingest run (landing sensor) and the month runs it triggered have all succeeded.
    Returns (ingest, its month runs, every run)."""
    deadline = time.monotonic() + PHASE_DEADLINE
    while True:
        runs = dev.runs()
        table = "\n".join(r.describe() for r in runs) or "(no runs)"
        failed = [r for r in runs if r.status in ("FAILURE", "CANCELED", "CANCELING")]
        assert not failed, f"{what}: a run failed\n{table}\n--- dagster dev log ---\n{dev.log_tail()}"
        ingests = [r for r in runs if r.sensor == LANDING_SENSOR and r.run_id not in before]
        if len(ingests) == 1 and ingests[0].status == "SUCCESS":
            months = [r for r in runs if r.tags.get("customs/after_ingest_run") == ingests[0].run_id]
            if months and all(r.status == "SUCCESS" for r in months):
                return ingests[0], months, runs
        assert len(ingests) <= 1, f"{what}: more than one ingest run\n{table}"
        assert time.monotonic() < deadline, (
            f"{what}: the ingest and its month runs had not all succeeded after {PHASE_DEADLINE} s\n"
            f"{table}\n--- dagster dev log ---\n{dev.log_tail()}")
        time.sleep(2)


def _launch_backfill(dev: DagsterDev, assets: list[str], partitions: list[str]) -> str:
    """What the UI's Materialize dialog sends for a range of months of the selected assets."""
    data = dev.gql(
        """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
        {"params": {"assetSelection": [{"path": a.split("/")} for a in assets], "partitionNames": partitions}},
    )["launchPartitionBackfill"]
    assert data["__typename"] == "LaunchBackfillSuccess", data
    return data["backfillId"]


def _wait_for_backfill(dev: DagsterDev, backfill_id: str) -> list[Run]:
    """Poll until the backfill daemon has finished the backfill; its runs, which must all have succeeded."""
    deadline = time.monotonic() + PHASE_DEADLINE
    while True:
        status = dev.gql("""query($id: String!) { partitionBackfillOrError(backfillId: $id) {
            __typename ... on PartitionBackfill { status } ... on PythonError { message } } }""", {"id": backfill_id})[
            "partitionBackfillOrError"]
        assert status["__typename"] == "PartitionBackfill", status
        runs = [r for r in dev.runs() if r.tags.get("dagster/backfill") == backfill_id]
        table = "\n".join(r.describe() for r in runs) or "(no runs)"
        if status["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
            assert status["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), f"backfill {status['status']}\n{table}\n{dev.log_tail()}"
            assert runs and all(r.status == "SUCCESS" for r in runs), table
            return runs
        assert time.monotonic() < deadline, f"the backfill had not finished after {PHASE_DEADLINE} s\n{table}\n{dev.log_tail()}"
        time.sleep(2)


def _materialized(dev: DagsterDev, asset: str, run_ids: set[str]) -> set[str]:
    """The partitions of `asset` that the given runs materialised."""
    data = dev.gql("""query($key: AssetKeyInput!) { assetOrError(assetKey: $key) {
        __typename ... on Asset { assetMaterializations { runId partition } } } }""", {"key": {"path": asset.split("/")}})[
        "assetOrError"]
    assert data["__typename"] == "Asset", data
    return {m["partition"] for m in data["assetMaterializations"] if m["runId"] in run_ids}


def _figures(warehouse: Path) -> dict:
    """Read from the served file (one read-only connection, closed before anything writes again):
    the months in the marts, the world figures of HS 85051110 by month, the files loaded."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        def months(table: str) -> list[str]:
            return [m for (m,) in con.execute(f"SELECT DISTINCT strftime(month, '%Y-%m') FROM marts.{table} ORDER BY 1").fetchall()]

        return {
            "fct_months": months("fct_exports_monthly"),
            "growth_months": months("export_growth_monthly"),
            "world_kg": dict(con.execute("""SELECT strftime(month, '%Y-%m'), sum(quantity_kg) FROM marts.fct_exports_monthly
                                            WHERE hs8 = '85051110' GROUP BY 1 ORDER BY 1""").fetchall()),
            "world_growth": {m: (kg, mom) for m, kg, mom in con.execute("""SELECT strftime(month, '%Y-%m'), quantity_kg, mom_pct
                FROM marts.export_growth_monthly WHERE hs8 = '85051110' AND partner_iso3 = 'WLD' ORDER BY 1""").fetchall()},
            "loaded_files": sorted(f for (f,) in con.execute("SELECT file_path FROM raw.customs_loads").fetchall()),
        }
    finally:
        con.close()


def _land(landing: Path, months: list[str]) -> None:
    """Drop sample downloads into the landing directory whole (written beside it, then renamed in):
    a sensor tick never sees a file half-written or before its final modification time."""
    incoming = landing.with_name(landing.name + ".incoming")
    for path in copy_sample(incoming, months=months):
        os.replace(path, landing / path.relative_to(incoming))


def _key(yyyymm: str) -> str:
    return f"{yyyymm[:4]}-{yyyymm[4:]}"


def test_the_daemon_ingests_new_downloads_and_builds_the_months_they_touch(tmp_path, monkeypatch):
    started = time.monotonic()
    live = tmp_path / "live"
    landing, warehouse = live / "landing", live / "wh" / "warehouse.duckdb"
    landing.mkdir(parents=True)
    copy_sample(landing, months=FIRST_MONTHS)
    first_keys = [_key(m) for m in FIRST_MONTHS]
    all_keys = first_keys + [_key(NEW_MONTH)]

    with dagster_dev(live, landing, warehouse) as dev:
        repo = _repository(dev)
        states = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
        assert states == {LANDING_SENSOR: "STOPPED", MONTHS_SENSOR: "RUNNING"}  # the defaults
        assert _start_sensor(dev, repo, LANDING_SENSOR) == "RUNNING"

        # 1. the downloads already there: one ingest of them, then the first build, one run of every month
        ingest, months, runs = _wait_for_build(dev, set(), "first build")
        assert ingest.tags["landing_files"] == ", ".join(f"exports/gacc_exports_{m}.csv" for m in FIRST_MONTHS)
        assert [r.range for r in months] == [(first_keys[0], first_keys[-1])]
        assert {r.run_id for r in runs} == {ingest.run_id, months[0].run_id}, "\n".join(r.describe() for r in runs)
        assert all(r.sensor == MONTHS_SENSOR for r in months)
        first = _figures(warehouse)  # the runs are over: nothing writes the served file now
        live_first_hash = marts_hash(warehouse, figures_only=True)
        first_runs = [(ingest.run_id, None), (months[0].run_id, months[0].range)]

        # 2. one more month lands: an ingest of that file alone, then a run of that month alone
        _land(landing, [NEW_MONTH])
        ingest2, months2, runs2 = _wait_for_build(dev, {r.run_id for r in runs}, "new month")
        assert ingest2.tags["landing_files"] == f"exports/gacc_exports_{NEW_MONTH}.csv"
        assert [r.range for r in months2] == [(_key(NEW_MONTH), _key(NEW_MONTH))]
        assert len(runs2) == 4, "\n".join(r.describe() for r in runs2)
        second = _figures(warehouse)
        live_second_hash = marts_hash(warehouse, figures_only=True)
        second_runs = [(ingest2.run_id, None), (months2[0].run_id, months2[0].range)]

        # 3. a backfill of May..June from the UI (select the monthly models, Materialize, a range of
        #    months): every selected model is rebuilt for both months, and the figures stay the same
        backfill_id = _launch_backfill(dev, sorted(MONTHLY_ASSETS), BACKFILL_MONTHS)
        backfill_runs = _wait_for_backfill(dev, backfill_id)
        run_ids = {r.run_id for r in backfill_runs}
        rebuilt = {asset: _materialized(dev, asset, run_ids) for asset in sorted(MONTHLY_ASSETS)}
        backfill_hash = marts_hash(warehouse, figures_only=True)
        backfill_ranges = sorted(r.range for r in backfill_runs)

        # 4. the same range with everything after the ingest selected (the asset graph, select
        #    all, Materialize): the daemon runs the unpartitioned models before and after the
        #    months, then the checks and the publish; every asset is materialised
        everything = sorted(k.to_user_string() for k in defs.resolve_asset_graph().materializable_asset_keys if k not in INGEST_KEYS)
        whole_id = _launch_backfill(dev, everything, BACKFILL_MONTHS)
        whole_runs = _wait_for_backfill(dev, whole_id)
        whole_ids = {r.run_id for r in whole_runs}
        whole = {asset: _materialized(dev, asset, whole_ids) for asset in everything}
        whole_hash = marts_hash(warehouse, figures_only=True)
        whole_ranges = [r.range for r in whole_runs if r.range != (None, None)]
    assert not dev.survivors, "dagster dev left processes running:\n" + "\n".join(dev.survivors)
    live_seconds = time.monotonic() - started

    # The backfill rebuilt every monthly model for both months, in one run per the single-run
    # backfill policy, and left the figures as they were
    assert rebuilt == {asset: set(BACKFILL_MONTHS) for asset in MONTHLY_ASSETS}, rebuilt
    assert backfill_ranges == [(BACKFILL_MONTHS[0], BACKFILL_MONTHS[-1])], backfill_ranges
    assert backfill_hash == live_second_hash
    assert {a: m for a, m in whole.items() if a in MONTHLY_ASSETS} == {a: set(BACKFILL_MONTHS) for a in MONTHLY_ASSETS}
    assert {a: m for a, m in whole.items() if a not in MONTHLY_ASSETS} == {a: {None} for a in everything if a not in MONTHLY_ASSETS}
    assert whole_ranges == [(BACKFILL_MONTHS[0], BACKFILL_MONTHS[-1])], whole_ranges
    assert whole_hash == live_second_hash

    # The served file holds the months copied, with the published figures
    assert first["fct_months"] == first["growth_months"] == first_keys
    assert first["loaded_files"] == [f"exports/gacc_exports_{m}.csv" for m in FIRST_MONTHS]
    assert first["world_kg"] == {m: Decimal(WORLD_KG[m]) for m in first_keys}
    assert second["fct_months"] == second["growth_months"] == all_keys
    assert second["loaded_files"] == [f"exports/gacc_exports_{m}.csv" for m in FIRST_MONTHS + [NEW_MONTH]]
    assert second["world_kg"] == {m: Decimal(WORLD_KG[m]) for m in all_keys}
    # the months built before are as they were; the new month's growth compares with June, built in the first run
    assert {m: second["world_growth"][m] for m in first_keys} == first["world_growth"]
    for month, quoted in WORLD_MOM_PCT.items():
        assert round(second["world_growth"][month][1], 1 if isinstance(quoted, float) else 0) == quoted, month

    # ... and every figure is what a CLI build of the same files, in the same two steps, makes
    cli = make_workspace(tmp_path / "cli")
    monkeypatch.setenv("CUSTOMS_LANDING_DIR", str(cli.landing))  # restored after the test (Workspace.build sets them)
    monkeypatch.setenv("WAREHOUSE_PATH", str(cli.warehouse))
    copy_sample(cli.landing, months=FIRST_MONTHS)
    first_cli = cli.build()
    assert first_cli.success and [(f"{a:%Y-%m}", f"{b:%Y-%m}") for a, b in first_cli.plan.ranges] == [(first_keys[0], first_keys[-1])]
    assert marts_hash(cli.warehouse, figures_only=True) == live_first_hash
    copy_sample(cli.landing, months=[NEW_MONTH])
    second_cli = cli.build()
    assert second_cli.success and [(f"{a:%Y-%m}", f"{b:%Y-%m}") for a, b in second_cli.plan.ranges] == [(_key(NEW_MONTH), _key(NEW_MONTH))]
    assert marts_hash(cli.warehouse, figures_only=True) == live_second_hash

    print(f"\nlive dagster dev: {live_seconds:.0f} s; runs {first_runs} then {second_runs}, backfills {backfill_ranges}, {len(whole_runs)} runs; "
          f"world kg {second['world_kg']}; MoM {({m: round(v[1], 2) for m, v in second['world_growth'].items() if v[1] is not None})}")
