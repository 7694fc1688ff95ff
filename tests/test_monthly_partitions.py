"""Month partitions (customs_month) of the incremental dbt models: a month re-run from the UI
rebuilds that month (and the growth metrics that compare with it) only; the automatic paths
(CLI, landing sensor + build_months_after_ingest, schedule) ingest, then build the months touched."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest
from conftest import make_workspace
from dagster import DagsterInstance, RunRequest, build_schedule_context, build_sensor_context
from gacc_files import copy_sample
from test_quality_gate import marts_hash

from dagster_project.definitions import defs
from dagster_project.defs.jobs import INGEST_KEYS
from dagster_project.defs.partitions import CUSTOMS_MONTH
from dagster_project.defs.transform.dbt_assets import MONTHLY_KEYS, customs_monthly_models
from dagster_project.lib.settings import Settings

D = dt.date


def test_partitions_cover_the_months_the_ingest_accepts():
    keys = CUSTOMS_MONTH.get_partition_keys()
    assert keys[0] == "1990-01"
    today = dt.date.today()
    last_over = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    assert keys[-1] == last_over  # the current month is not over: no statistics, no partition
    graph = defs.resolve_asset_graph()
    partitioned = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).partitions_def}
    assert partitioned == {"intermediate/int_customs_facts_history", "intermediate/int_trade_monthly",
                           "marts/fct_exports_monthly", "marts/export_growth_monthly",
                           "marts/export_growth_rare_earths", "intermediate/int_trade_by_grouping_monthly",
                           "marts/export_growth_by_province", "marts/export_growth_by_regime",
                           "marts/fct_imports_monthly", "marts/import_growth_monthly"}
    assert graph.get(next(iter(MONTHLY_KEYS))).backfill_policy.max_partitions_per_run is None  # single run


def _partitions(result) -> dict[str, set]:
    out: dict[str, set] = {}
    for m in result.get_asset_materialization_events():
        out.setdefault(m.asset_key.to_user_string(), set()).add(m.partition)
    return out


@pytest.mark.slow
def test_one_month_partition_rebuilds_that_month_and_its_growth_months_only(workspace):
    copy_sample(workspace.landing, months=[f"2024{m:02d}" for m in range(1, 13)] + [f"2025{m:02d}" for m in range(1, 7)])
    assert workspace.build().success  # a clean full build
    working = workspace.working_copy
    fct = "SELECT * FROM marts.fct_exports_monthly WHERE month = $m ORDER BY ALL"
    growth = "SELECT * FROM marts.export_growth_monthly WHERE month = $m ORDER BY ALL"
    clean = {(sql, m): workspace.query(sql, {"m": m}, working=True)
             for sql in (fct, growth) for m in (D(2024, 2, 1), D(2024, 3, 1), D(2024, 4, 1), D(2024, 5, 1))}
    # a model "bug" in two months of the facts and of the growth metrics
    con = duckdb.connect(str(working))
    con.execute("UPDATE marts.fct_exports_monthly SET quantity_kg = quantity_kg + 1 WHERE month IN ('2024-03-01', '2024-05-01')")
    con.execute("UPDATE marts.export_growth_monthly SET mom_pct = -999 WHERE month IN ('2024-02-01', '2024-04-01')")
    con.close()

    job = defs.resolve_job_def("build_warehouse")
    # the dbt tests of the monthly models (not the quality gate's checks on them)
    dbt_checks = set(customs_monthly_models.check_keys)
    with workspace.instance() as instance:
        # what the UI does for "materialise 2024-03" of the monthly models
        result = job.get_subset(asset_selection=set(MONTHLY_KEYS), asset_check_selection=dbt_checks).execute_in_process(
            instance=instance, partition_key="2024-03", raise_on_error=False)
    assert result.success
    assert _partitions(result) == {k.to_user_string(): {"2024-03"} for k in MONTHLY_KEYS}
    by_key = {m.asset_key.path[-1]: m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert by_key["fct_exports_monthly"]["months_built"].value == "2024-03"
    assert by_key["export_growth_monthly"]["months_built"].value == "2024-03..2025-12"

    def now(sql, month):
        return workspace.query(sql, {"m": month}, working=True)

    assert now(fct, D(2024, 3, 1)) == clean[(fct, D(2024, 3, 1))]  # rebuilt: equal to the clean build
    assert now(fct, D(2024, 5, 1)) != clean[(fct, D(2024, 5, 1))]  # another month: untouched
    assert now(growth, D(2024, 4, 1)) == clean[(growth, D(2024, 4, 1))]  # compares with March: rebuilt
    assert now(growth, D(2024, 2, 1)) != clean[(growth, D(2024, 2, 1))]  # before March: untouched
    # dbt ran just the monthly models (and their tests), for that month
    folder = Settings(landing_dir=workspace.landing, warehouse_path=workspace.warehouse).dbt_target("customs_monthly_models")
    ran = {r["unique_id"] for r in json.loads((folder / "run_results.json").read_text())["results"]}
    assert {u for u in ran if u.startswith("model.")} == {
        "model.customs.int_customs_facts_history", "model.customs.int_trade_monthly",
        "model.customs.int_trade_by_grouping_monthly", "model.customs.fct_exports_monthly",
        "model.customs.export_growth_monthly", "model.customs.export_growth_rare_earths",
        "model.customs.export_growth_by_province", "model.customs.export_growth_by_regime",
        "model.customs.fct_imports_monthly", "model.customs.import_growth_monthly"}

    # a run without a partition cannot build a month: Dagster refuses it before dbt runs
    before = (folder / "run_results.json").stat().st_mtime_ns
    with workspace.instance() as instance:
        bad = job.get_subset(asset_selection=set(MONTHLY_KEYS), asset_check_selection=set()).execute_in_process(
            instance=instance, raise_on_error=False)
    assert not bad.success
    failure = next(e for e in bad.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    assert "partition" in (error.message + (error.cause.message if error.cause else "")).lower()
    assert (folder / "run_results.json").stat().st_mtime_ns == before


def _execute(request: RunRequest, instance, job):
    subset = job.get_subset(asset_selection=set(request.asset_selection),
                            asset_check_selection=set(request.asset_check_keys or []))
    return subset.execute_in_process(instance=instance, run_config=request.run_config, tags=request.tags, raise_on_error=False)


@pytest.mark.slow
def test_the_sensors_ingest_then_build_the_months_touched_as_the_cli_does(tmp_path, monkeypatch):
    sensor_ws = make_workspace(tmp_path / "sensor")
    cli_ws = make_workspace(tmp_path / "cli")
    for ws in (sensor_ws, cli_ws):
        copy_sample(ws.landing, months=[f"2024{m:02d}" for m in range(1, 13)])
    job = defs.resolve_job_def("build_warehouse")
    landing = defs.resolve_sensor_def("landing_files_sensor")
    months = defs.resolve_sensor_def("build_months_after_ingest")
    monkeypatch.setenv("CUSTOMS_LANDING_DIR", str(sensor_ws.landing))
    monkeypatch.setenv("WAREHOUSE_PATH", str(sensor_ws.warehouse))
    cursor, month_cursor, runs = None, None, []
    with DagsterInstance.ephemeral() as instance:
        for new_months in ([], ["202501", "202502", "202505"]):
            copy_sample(sensor_ws.landing, months=new_months)
            tick = landing.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
            cursor = tick.cursor
            [ingest] = tick.run_requests
            assert set(ingest.asset_selection) == set(INGEST_KEYS) and not ingest.asset_check_keys
            assert _execute(ingest, instance, job).success
            tick = months.evaluate_tick(build_sensor_context(instance=instance, cursor=month_cursor, definitions=defs))
            month_cursor = tick.cursor
            built = []
            for request in tick.run_requests:
                result = _execute(request, instance, job)
                assert result.success
                built.append((request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]))
            runs.append(built)
    # the first build: every month in one run; then the two ranges of new months
    assert runs == [[("2024-01", "2024-12")], [("2025-01", "2025-02"), ("2025-05", "2025-05")]]

    assert cli_ws.build().success
    copy_sample(cli_ws.landing, months=["202501", "202502", "202505"])
    assert cli_ws.build().success
    assert marts_hash(sensor_ws.warehouse, figures_only=True) == marts_hash(cli_ws.warehouse, figures_only=True)


def test_the_schedule_requests_the_ingest():
    schedule = defs.resolve_schedule_def("monthly_after_gacc_release")
    with DagsterInstance.ephemeral() as instance:
        [request] = schedule.evaluate_tick(build_schedule_context(instance=instance)).run_requests
    assert set(request.asset_selection) == set(INGEST_KEYS) and request.asset_check_keys == []
