"""The landing sensor asks for runs of just the new or changed files; the UI serves the graph."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context

from dagster_project.defs.sensors import landing_files_sensor
from gacc_files import copy_sample


def evaluate(cursor):
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, cursor=cursor)
        results = list(landing_files_sensor(context))
        return results, context.cursor


def test_sensor_requests_runs_for_new_and_changed_files_only(workspace):
    copy_sample(workspace.landing, months=["202505", "202506"])
    (request,), cursor = evaluate(None)
    assert isinstance(request, RunRequest)
    files = request.run_config["ops"]["raw_customs_extracts"]["config"]["files"]
    assert files == ["exports/gacc_exports_202505.csv", "exports/gacc_exports_202506.csv"]

    (skip,), cursor = evaluate(cursor)
    assert isinstance(skip, SkipReason)

    copy_sample(workspace.landing, months=["202507"])
    changed = workspace.landing / "exports" / "gacc_exports_202505.csv"
    changed.write_bytes(changed.read_bytes() + b"")  # same bytes, new mtime: still re-checked
    os.utime(changed, (time.time() + 5, time.time() + 5))
    (request,), cursor = evaluate(cursor)
    files = request.run_config["ops"]["raw_customs_extracts"]["config"]["files"]
    assert files == ["exports/gacc_exports_202505.csv", "exports/gacc_exports_202507.csv"]

    # a run for just those files loads just those files
    result = workspace.build(files=["exports/gacc_exports_202507.csv"])
    assert result.success
    assert workspace.query("SELECT file_path FROM raw.customs_loads") == [("exports/gacc_exports_202507.csv",)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.daemon
def test_the_ui_serves_the_asset_graph_with_checks(tmp_path):
    port = _free_port()
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path))
    (tmp_path / "dagster.yaml").write_text((Path(__file__).parents[1] / "dagster.yaml").read_text())
    webserver = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(webserver), "-m", "dagster_project.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        query = {"query": "{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } } }"}
        deadline = time.time() + 120
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps(query).encode(),
                                                 headers={"Content-Type": "application/json"})
                body = json.loads(urllib.request.urlopen(request, timeout=10).read())
                if body.get("data", {}).get("assetNodes"):
                    break
            except OSError:
                pass
            assert time.time() < deadline, "the UI did not come up"
            time.sleep(1)
        nodes = body["data"]["assetNodes"]
        keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
        assert {"raw/customs_rows", "marts/export_growth_monthly", "serving/warehouse"} <= keys
        checks = {c["name"] for n in nodes for c in (n["assetChecksOrError"].get("checks") or [])}
        assert {"unit_value_not_extreme", "partners_sum_to_world", "unique_combination_fct_exports_monthly_month__hs8__partner_code"} <= checks
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_months_sensor_leaves_make_runs_ingest_to_make_run(workspace):
    """build_months_after_ingest builds after the ingests of the UI, the landing sensor and the
    schedule; a `make run` ingest (tagged with the CLI's pid) is followed by make run's own runs."""
    from dagster import build_sensor_context

    from dagster_project.definitions import defs
    from dagster_project.defs.jobs import INGEST_KEYS
    from dagster_project.lib.warehouse.build_lock import CLI_PID_TAG

    copy_sample(workspace.landing, months=["202505"])
    job = defs.resolve_job_def("build_warehouse").get_subset(asset_selection=set(INGEST_KEYS), asset_check_selection=set())
    months = defs.resolve_sensor_def("build_months_after_ingest")
    with workspace.instance() as instance:
        assert job.execute_in_process(instance=instance, tags={CLI_PID_TAG: str(os.getpid())}).success
        tick = months.evaluate_tick(build_sensor_context(instance=instance, definitions=defs))
        assert not tick.run_requests and "builds its months itself" in tick.skip_message
        copy_sample(workspace.landing, months=["202506"])
        assert job.execute_in_process(instance=instance).success  # an ingest from the UI
        tick = months.evaluate_tick(build_sensor_context(instance=instance, cursor=tick.cursor, definitions=defs))
    assert [r.tags["dagster/asset_partition_range_start"] for r in tick.run_requests] == ["2025-05"]
