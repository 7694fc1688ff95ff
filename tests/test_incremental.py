"""Incremental builds: a new month rebuilds its months only, and converges to a clean build."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
from conftest import make_workspace
from gacc_files import copy_sample
from test_month_fingerprints import recorded_equals_direct
from test_quality_gate import marts_hash

from dagster_project.lib.transform.months_to_build import (
    dbt_env,
    dbt_vars,
    growth_months,
    project_fingerprint,
    record_months_to_verify,
    scope_to_verify,
    static_nodes,
    verified,
)
from dagster_project.lib.settings import DBT_PROJECT_DIR


def dbt_invocation(run_id: str) -> Path:
    """The target folder of a run's `dbt build` (dagster_project/defs/dbt_assets.py names it)."""
    [folder] = (DBT_PROJECT_DIR / "target").glob(f"customs_dbt_models-{run_id[:7]}-*")
    return folder


def run_results(run_id: str) -> dict[str, str]:
    data = json.loads((dbt_invocation(run_id) / "run_results.json").read_text())
    return {r["unique_id"]: r["status"] for r in data["results"]}


def test_growth_months_cover_next_month_next_year_and_ytd():
    months = growth_months([dt.date(2025, 6, 1)])
    assert months[0] == dt.date(2025, 6, 1) and months[-1] == dt.date(2026, 12, 1)
    assert dt.date(2025, 7, 1) in months and dt.date(2026, 6, 1) in months and dt.date(2025, 5, 1) not in months
    assert dbt_vars(None) is None
    assert dbt_vars([dt.date(2025, 6, 1)])["months"] == ["2025-06-01"]


def test_an_incremental_build_equals_a_clean_build(tmp_path):
    history = [f"2024{m:02d}" for m in range(1, 13)] + [f"2025{m:02d}" for m in range(1, 6)]
    incremental = make_workspace(tmp_path / "incremental")
    copy_sample(incremental.landing, months=history)
    assert incremental.build().success

    # June arrives, and a revised March 2025 (the same file changed in place)
    copy_sample(incremental.landing, months=["202506"])
    march = incremental.landing / "exports" / "gacc_exports_202503.csv"
    text = march.read_bytes().decode("gb18030")
    line = next(l for l in text.split("\r\n") if '"502"' in l and '"85051110"' in l)
    march.write_bytes(text.replace(line, line.replace('"560,000"', '"561,000"')).encode("gb18030"))
    os.utime(march)
    result = incremental.build()
    assert result.success
    # the second build: the ingest, then one run per range of months it touched (customs_month
    # partitions): March, then June; each marks built the load of its month
    assert [(r.start, r.end) for r in result.ranges] == [("2025-03", "2025-03"), ("2025-06", "2025-06")]
    ingest_run, march_run, june_run = result.runs
    assert march_run.dagster_run.tags["dagster/asset_partition_range_start"] == "2025-03"
    runs = dict(incremental.query("SELECT dagster_run_id, count(*) FROM raw.customs_loads_built GROUP BY 1"))
    assert sorted(runs.values()) == [1, 1, 17] and runs[march_run.run_id] == runs[june_run.run_id] == 1

    # ... and tested just the month it rebuilt: the same data tests, each over that month
    folder = dbt_invocation(march_run.run_id)
    compiled = (folder / "compiled" / "customs" / "models" / "marts" / "fct_exports_monthly.yml"
                / "unique_combination_fct_exports_monthly_month__hs8__partner_code.sql").read_text()
    assert "\"month\" in (date '2025-03-01')" in compiled
    growth_test = next((folder / "compiled" / "customs" / "models" / "marts" / "export_growth_monthly.yml").glob("unique_combination_*.sql"))
    assert "\"month\" in (date '2025-03-01', date '2025-04-01', " in growth_test.read_text()  # growth months: through 2026-12
    # months come through the environment, so dbt kept its parse of the project (--vars would not)
    log = (folder / "dbt.log").read_text()
    assert "Unable to do partial parsing" not in log and "Partial parsing enabled" in log
    # the project's files did not change: seeds, views, dims, their tests and the unit tests are left out
    for run in (march_run, june_run):
        ran = run_results(run.run_id)
        assert not [uid for uid in ran if uid.startswith(("seed.", "unit_test."))]
        assert "model.customs.dim_partner" not in ran and "model.customs.v_magnet_exports_by_partner" not in ran
        assert "model.customs.fct_exports_monthly" in ran and "model.customs.dim_month" in ran
        assert any("relationships_fct_exports_monthly_partner_code" in uid for uid in ran)  # to the dim left out
        assert any("relationships_stg_gacc__customs_rows_declared_unit_code" in uid for uid in ran)  # to a seed left out
        assert any("unique_combination_v_magnet_exports_by_partner" in uid for uid in ran)  # a test on a view left out
    dim = [m for m in june_run.get_asset_materialization_events() if m.asset_key.path == ["marts", "dim_partner"]]
    assert dim and dim[0].materialization.metadata["rebuilt"].value is False
    for run, month in ((march_run, "2025-03"), (june_run, "2025-06")):
        fct = [m for m in run.get_asset_materialization_events() if m.asset_key.path == ["marts", "fct_exports_monthly"]]
        assert [m.partition for m in fct] == [month]
        assert fct[0].materialization.metadata["months_built"].value == month
    # the quality gate and the publish run once, in the last run, over both months
    assert not [e for e in march_run.all_events if e.step_key == "quality_gate"]
    assert [e for e in june_run.all_events if e.step_key == "quality_gate" and e.is_step_success]

    clean = make_workspace(tmp_path / "clean")
    shutil.copytree(incremental.landing, clean.landing, dirs_exist_ok=True)
    assert clean.build().success

    # the clean build loads only the revised March file, the incremental one kept both releases
    assert incremental.scalar("SELECT count(*) FROM raw.customs_loads") == 19
    assert clean.scalar("SELECT count(*) FROM raw.customs_loads") == 18
    us_march = "SELECT quantity_kg FROM marts.fct_exports_monthly WHERE month = DATE '2025-03-01' AND hs8 = '85051110' AND partner_code = '502'"
    assert incremental.scalar(us_march) == clean.scalar(us_march) == 561_000
    # identical marts apart from lineage ids of the March load
    for table, order in (("export_growth_monthly", "month, hs8, partner_iso3"),
                         ("export_growth_rare_earths", "month, hs8, partner_iso3")):
        a = incremental.query(f"SELECT * FROM marts.{table} ORDER BY {order}")
        b = clean.query(f"SELECT * FROM marts.{table} ORDER BY {order}")
        assert a == b
    # the small table is exactly the growth rows under the rare-earth headings, month by month
    for ws in (incremental, clean):
        growth_subset = ws.query("SELECT * FROM marts.export_growth_monthly WHERE hs8[:4] IN ('8505', '2805', '2846') ORDER BY ALL")
        assert growth_subset == ws.query("SELECT * FROM marts.export_growth_rare_earths ORDER BY ALL")
        assert len(growth_subset) > 100
    cols = "month, hs8, partner_code, partner_iso3, quantity_kg, quantity, unit_code, value_usd, value_cny, source_row_count"
    assert incremental.query(f"SELECT {cols} FROM marts.fct_exports_monthly ORDER BY ALL") == \
        clean.query(f"SELECT {cols} FROM marts.fct_exports_monthly ORDER BY ALL")
    # the per-month fingerprints the Parquet export trusts: kept right through the incremental builds
    assert recorded_equals_direct(incremental.warehouse) == recorded_equals_direct(clean.warehouse)


def test_dbt_rejects_a_malformed_month_var(tmp_path):
    env = dict(os.environ, WAREHOUSE_PATH=str(tmp_path / "warehouse.duckdb"))
    out = subprocess.run(
        [str(shutil.which("dbt") or os.path.join(os.path.dirname(os.sys.executable), "dbt")), "compile",
         "--select", "fct_exports_monthly", "--vars", '{"months": ["2025-06-01\'; drop table x; --"]}',
         "--profiles-dir", ".", "--project-dir", "."],
        cwd="dbt", env=env, capture_output=True, text=True, timeout=180,
    )
    assert out.returncode != 0
    assert "is not a month written YYYY-MM-01" in out.stdout + out.stderr


def test_dbt_rejects_malformed_months_in_the_environment(tmp_path):
    env = dict(os.environ, WAREHOUSE_PATH=str(tmp_path / "warehouse.duckdb"), CUSTOMS_DBT_MONTHS='"2025-06-01"')
    out = subprocess.run(
        [str(shutil.which("dbt") or os.path.join(os.path.dirname(os.sys.executable), "dbt")), "compile",
         "--select", "fct_exports_monthly", "--profiles-dir", ".", "--project-dir", ".",
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "target")],
        cwd="dbt", env=env, capture_output=True, text=True, timeout=180,
    )
    assert out.returncode != 0
    assert "must be a JSON list of months" in out.stdout + out.stderr
    assert dbt_env(None) == {}
    assert json.loads(dbt_env(dbt_vars([dt.date(2025, 6, 1)]))["CUSTOMS_DBT_MONTHS"]) == ["2025-06-01"]


def test_what_an_unchanged_project_lets_a_build_leave_out(tmp_path):
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    static = static_nodes(manifest)
    names = set(static.names)
    # seeds, views and the dims built from seeds alone, with the tests of those dims ...
    assert {"gacc_partners", "gacc_units", "dim_partner", "dim_commodity", "stg_gacc__customs_rows",
            "v_magnet_exports_by_partner", "unique_dim_partner_partner_code"} <= names
    # ... never a table built from the loads, nor a test that reads one
    assert not names & {"fct_exports_monthly", "dim_month", "int_customs_facts_history", "export_growth_monthly",
                        "export_growth_rare_earths"}
    assert not [n for n in names if n.startswith(("relationships_fct", "relationships_stg", "unique_combination_v_"))]
    assert ("marts", "dim_partner") in static.relations and ("reference", "gacc_units") in static.relations

    # the fingerprint follows every file of the project, seeds included
    copy = tmp_path / "dbt"
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    before = project_fingerprint(copy)
    assert project_fingerprint(DBT_PROJECT_DIR) == before
    seed = copy / "seeds" / "gacc_partners.csv"
    seed.write_bytes(seed.read_bytes() + b"\n")
    assert project_fingerprint(copy) != before


def test_months_wait_for_a_gate_that_passes():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    june = dbt_vars([dt.date(2025, 6, 1)])
    record_months_to_verify(con, "run-1", june)
    assert scope_to_verify(con, "another-run") is None  # a gate without a build in its run checks everything
    scope = scope_to_verify(con, "run-1")
    assert scope.months == (dt.date(2025, 6, 1),) and scope.growth_months[-1] == dt.date(2026, 12, 1)
    # run-1's gate failed: run-2 built July; its gate checks June too
    record_months_to_verify(con, "run-2", dbt_vars([dt.date(2025, 7, 1)]))
    assert scope_to_verify(con, "run-2").months == (dt.date(2025, 6, 1), dt.date(2025, 7, 1))
    verified(con)
    record_months_to_verify(con, "run-3", dbt_vars([]))
    assert scope_to_verify(con, "run-3").months == ()  # nothing built, nothing left to verify
    record_months_to_verify(con, "run-4", None)  # a build of every month
    assert scope_to_verify(con, "run-4") is None


def test_a_monthly_model_new_to_the_project_is_built_for_every_month(tmp_path):
    """A warehouse built before a month-by-month model was added (its table missing) builds every
    month in its next build, new files or not; an incremental build of no months would leave the
    table missing and the views on it failing."""
    ws = make_workspace(tmp_path / "ws")
    copy_sample(ws.landing)
    assert ws.build().success
    expected = ws.query("SELECT * FROM marts.export_growth_rare_earths ORDER BY ALL")
    con = duckdb.connect(str(ws.warehouse.with_name(ws.warehouse.name + ".build")))
    con.execute("DROP VIEW marts.v_magnet_exports_by_partner")
    con.execute("DROP TABLE marts.export_growth_rare_earths")
    con.close()

    result = ws.build()  # no new files
    assert result.success
    [loads] = [e for e in result.runs[0].get_asset_materialization_events() if e.asset_key.path == ["raw", "customs_loads"]]
    assert loads.materialization.metadata["months_to_build_label"].value == "2024-01..2025-12"
    assert ws.query("SELECT * FROM marts.export_growth_rare_earths ORDER BY ALL") == expected
    assert ws.scalar("SELECT quantity_t FROM marts.v_magnet_exports_by_partner "
                     "WHERE month_label = '2025-06' AND partner_iso3 = 'WLD'") == 3188
