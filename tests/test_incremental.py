"""Incremental builds: Dagster's record of the month partitions says which months a build
rebuilds; a new month rebuilds its months only, a model change every month, and both converge
to a clean build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import duckdb
import pytest
from conftest import make_workspace
from dagster import AssetKey, AssetMaterialization
from gacc_files import copy_sample

from dagster_project.defs.jobs import RAW_LOADS_KEY, plan_from_ingest
from dagster_project.defs.transform.dbt_assets import MONTHLY_KEYS, customs_monthly_models
from dagster_project.lib.months import key_month
from dagster_project.lib.settings import Settings

pytestmark = pytest.mark.slow

FCT = AssetKey(["marts", "fct_exports_monthly"])
US_MARCH = ("SELECT quantity_kg FROM marts.fct_exports_monthly "
            "WHERE month = DATE '2025-03-01' AND hs8 = '85051110' AND partner_code = '502'")


def dbt_folder(ws, op: str):
    """The target folder of an op's last `dbt` invocation on this warehouse (lib/settings.py)."""
    return Settings(landing_dir=ws.landing, warehouse_path=ws.warehouse).dbt_target(op)


def ran(ws, op: str) -> dict[str, str]:
    data = json.loads((dbt_folder(ws, op) / "run_results.json").read_text())
    return {r["unique_id"]: r["status"] for r in data["results"]}


def partitions(run, key: AssetKey) -> list[str]:
    return [m.partition for m in run.get_asset_materialization_events() if m.asset_key == key]


def plan_of(result):
    [loads] = [e for e in result.runs[0].get_asset_materialization_events() if e.asset_key == RAW_LOADS_KEY]
    return plan_from_ingest(loads.materialization.metadata)


def test_an_incremental_build_equals_a_clean_build(tmp_path):
    history = [f"2024{m:02d}" for m in range(1, 13)] + [f"2025{m:02d}" for m in range(1, 6)]
    incremental = make_workspace(tmp_path / "incremental")
    copy_sample(incremental.landing, months=history)
    first = incremental.build()
    assert first.success
    assert first.plan.every_month_because == "first build"
    assert [(f"{a:%Y-%m}", f"{b:%Y-%m}") for a, b in first.plan.ranges] == [("2024-01", "2025-05")]

    # June arrives, and a revised March 2025 (the same file changed in place)
    copy_sample(incremental.landing, months=["202506"])
    march = incremental.landing / "exports" / "gacc_exports_202503.csv"
    text = march.read_bytes().decode("gb18030")
    line = next(l for l in text.split("\r\n") if '"502"' in l and '"85051110"' in l)
    march.write_bytes(text.replace(line, line.replace('"560,000"', '"561,000"')).encode("gb18030"))
    os.utime(march)
    result = incremental.build()
    assert result.success
    # Dagster's record says March and June are newer than their last build: one run per range
    assert [(f"{a:%Y-%m}", f"{b:%Y-%m}") for a, b in result.plan.ranges] == [("2025-03", "2025-03"), ("2025-06", "2025-06")]
    assert result.plan.every_month_because is None and not result.plan.project_keys
    ingest_run, march_run, june_run = result.runs
    assert march_run.dagster_run.tags["dagster/asset_partition_range_start"] == "2025-03"
    for run, month in ((march_run, "2025-03"), (june_run, "2025-06")):
        assert {k.to_user_string(): partitions(run, k) for k in MONTHLY_KEYS} == {k.to_user_string(): [month] for k in MONTHLY_KEYS}
        fct = [m for m in run.get_asset_materialization_events() if m.asset_key == FCT]
        assert fct[0].materialization.metadata["months_built"].value == month

    # June's dbt build: the month range as vars, its data tests scoped to it
    compiled = (dbt_folder(incremental, "customs_monthly_models") / "compiled" / "customs" / "models" / "marts"
                / "fct_exports_monthly.yml" / "unique_combination_fct_exports_monthly_month__hs8__partner_code.sql").read_text()
    assert "\"month\" between date '2025-06-01' and date '2025-06-01'" in compiled
    growth_test = next((dbt_folder(incremental, "customs_monthly_models") / "compiled" / "customs" / "models" / "marts"
                        / "export_growth_monthly.yml").glob("unique_combination_*.sql"))
    assert "\"month\" between date '2025-06-01' and date '2026-12-01'" in growth_test.read_text()
    monthly = ran(incremental, "customs_monthly_models")
    assert {u for u in monthly if u.startswith("model.")} == {
        "model.customs.int_customs_facts_history", "model.customs.int_trade_monthly", "model.customs.fct_exports_monthly",
        "model.customs.export_growth_monthly", "model.customs.export_growth_rare_earths",
        "model.customs.int_trade_by_grouping_monthly", "model.customs.export_growth_by_province",
        "model.customs.export_growth_by_regime", "model.customs.fct_imports_monthly", "model.customs.import_growth_monthly"}
    assert any("relationships_fct_exports_monthly_partner_code" in u for u in monthly)  # to a dim not rebuilt
    # the rest: the tables made from the loads, not the seeds, views and seed-only dims (unchanged code)
    rest = ran(incremental, "customs_dbt_models")
    assert {u for u in rest if u.startswith(("model.", "seed."))} == {
        "model.customs.int_trade_cumulative", "model.customs.fct_exports_cumulative", "model.customs.dim_month"}
    # the quality gate and the publish run once, in the last run, over both months
    assert not [e for e in march_run.all_events if (e.step_key or "").startswith("quality_gate")]
    assert [e for e in june_run.all_events if e.step_key == "quality_gate" and e.is_step_success]

    clean = make_workspace(tmp_path / "clean")
    shutil.copytree(incremental.landing, clean.landing, dirs_exist_ok=True)
    assert clean.build().success

    # the clean build loads only the revised March file, the incremental one kept both releases
    assert incremental.scalar("SELECT count(*) FROM raw.customs_loads") == 19
    assert clean.scalar("SELECT count(*) FROM raw.customs_loads") == 18
    assert incremental.scalar(US_MARCH) == clean.scalar(US_MARCH) == 561_000
    for table in ("export_growth_monthly", "export_growth_rare_earths", "fct_exports_cumulative", "dim_month",
                  "export_growth_by_province", "import_growth_monthly"):
        assert incremental.query(f"SELECT * FROM marts.{table} ORDER BY ALL") == clean.query(f"SELECT * FROM marts.{table} ORDER BY ALL")
    cols = "month, hs8, partner_code, partner_iso3, quantity_kg, quantity, unit_code, value_usd, value_cny, source_row_count"
    assert incremental.query(f"SELECT {cols} FROM marts.fct_exports_monthly ORDER BY ALL") == \
        clean.query(f"SELECT {cols} FROM marts.fct_exports_monthly ORDER BY ALL")

    # nothing new: no month to build, the gate and the publish run again on their own
    again = incremental.build()
    assert again.success and not again.plan.ranges and not again.plan.project_keys
    assert len(again.runs) == 2 and not partitions(again.runs[1], FCT)


def test_a_build_that_failed_is_redone_by_the_next(tmp_path):
    """Months whose dbt build failed are not recorded as built: the next build redoes them."""
    ws = make_workspace(tmp_path / "ws")
    copy_sample(ws.landing, months=[f"2024{m:02d}" for m in range(1, 13)])
    assert ws.build().success
    copy_sample(ws.landing, months=["202501"])
    os.environ["CUSTOMS_DUCKDB_MEMORY_LIMIT"] = "1MB"  # dbt runs out of memory
    try:
        failed = ws.build()
    finally:
        os.environ.pop("CUSTOMS_DUCKDB_MEMORY_LIMIT")
    assert not failed.success
    assert [(f"{a:%Y-%m}", f"{b:%Y-%m}") for a, b in failed.plan.ranges] == [("2025-01", "2025-01")]
    retried = ws.build()  # no new file
    assert retried.success
    assert [(f"{a:%Y-%m}", f"{b:%Y-%m}") for a, b in retried.plan.ranges] == [("2025-01", "2025-01")]
    assert ws.scalar("SELECT count(*) FROM marts.fct_exports_monthly WHERE month = DATE '2025-01-01'") > 0


def test_a_model_whose_sql_changed_is_rebuilt_for_every_month(tmp_path):
    """After a model's SQL changes, the next build rebuilds every month by itself (a dbt full
    refresh): Dagster's code versions say the months were built by other SQL."""
    ws = make_workspace(tmp_path / "ws")
    copy_sample(ws.landing, months=[f"2024{m:02d}" for m in range(1, 13)])
    assert ws.build().success
    expected = ws.query("SELECT * FROM marts.fct_exports_monthly ORDER BY ALL")
    # what the old SQL made: a different figure in a month no new file touches
    con = duckdb.connect(str(ws.working_copy))
    con.execute("UPDATE marts.fct_exports_monthly SET quantity_kg = quantity_kg + 1 WHERE month = DATE '2024-03-01'")
    con.close()
    # the last build of fct_exports_monthly was made by a code version other than today's SQL
    with ws.instance() as instance:
        instance.report_runless_asset_event(
            AssetMaterialization(asset_key=FCT, partition="2024-03", tags={"dagster/code_version": "the-old-sql"}))
        assert instance.get_latest_materialization_code_versions([FCT])[FCT] == "the-old-sql"
        assert customs_monthly_models.code_versions_by_key[FCT] != "the-old-sql"

    result = ws.build()  # no new file
    assert result.success
    assert result.plan.every_month_because == "the SQL of marts/fct_exports_monthly changed"
    assert [(f"{a:%Y-%m}", f"{b:%Y-%m}") for a, b in result.plan.ranges] == [("2024-01", "2024-12")]
    args = json.loads((dbt_folder(ws, "customs_monthly_models") / "run_results.json").read_text())["args"]
    assert args["full_refresh"] is True and "vars" not in args or args["vars"] == {}
    assert ws.query("SELECT * FROM marts.fct_exports_monthly ORDER BY ALL") == expected
    with ws.instance() as instance:
        assert instance.get_latest_materialization_code_versions([FCT])[FCT] == customs_monthly_models.code_versions_by_key[FCT]


def test_a_monthly_table_missing_from_the_warehouse_is_built_for_every_month(tmp_path):
    """A month-by-month table missing (a model new to the project, or dropped by hand) makes the
    next build one of every month, new files or not."""
    ws = make_workspace(tmp_path / "ws")
    copy_sample(ws.landing)
    assert ws.build().success
    expected = ws.query("SELECT * FROM marts.export_growth_rare_earths ORDER BY ALL")
    con = duckdb.connect(str(ws.working_copy))
    con.execute("DROP VIEW marts.v_magnet_exports_by_partner")
    con.execute("DROP TABLE marts.export_growth_rare_earths")
    con.close()

    result = ws.build()  # no new files
    assert result.success
    assert plan_of(result).every_month_because == "marts.export_growth_rare_earths not built yet"
    assert [(f"{a:%Y-%m}", f"{b:%Y-%m}") for a, b in result.plan.ranges] == [("2024-01", "2025-12")]
    assert AssetKey(["marts", "v_magnet_exports_by_partner"]) in result.plan.project_keys  # its relation is missing
    assert ws.query("SELECT * FROM marts.export_growth_rare_earths ORDER BY ALL") == expected
    assert ws.scalar("SELECT quantity_t FROM marts.v_magnet_exports_by_partner "
                     "WHERE month_label = '2025-06' AND partner_iso3 = 'WLD'") == 3188


def test_dbt_rejects_a_malformed_month_var(tmp_path):
    env = dict(os.environ, WAREHOUSE_PATH=str(tmp_path / "warehouse.duckdb"))
    dbt = shutil.which("dbt") or os.path.join(os.path.dirname(os.sys.executable), "dbt")
    for months, message in (({"first_month": "2025-06-01'; drop table x; --", "last_month": "2025-06-01"}, "is not a month written YYYY-MM-01"),
                            ({"first_month": "2025-07-01", "last_month": "2025-06-01"}, "is after last_month")):
        out = subprocess.run(
            [dbt, "compile", "--select", "fct_exports_monthly", "--vars", json.dumps(months), "--profiles-dir", ".",
             "--project-dir", ".", "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "target")],
            cwd="dbt", env=env, capture_output=True, text=True, timeout=180,
        )
        assert out.returncode != 0
        assert message in out.stdout + out.stderr
    assert key_month("2025-06") == key_month("2025-06-01")
