"""The quality gate: each crafted broken dataset fails its check; errors block publishing, warnings do not."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from dagster import AssetSelection, DagsterInstance, Definitions, define_asset_job

from conftest import Workspace, make_workspace
from gacc_files import copy_sample

# The dbt tests that check what the GX gate no longer does (one row per month x hs8 x partner;
# no negative quantity or value): dagster-dbt runs them as asset checks of the fact table.
FACT_DBT_TESTS = (
    "unique_combination_fct_exports_monthly_month__hs8__partner_code",
    "non_negative_fct_exports_monthly_quantity",
    "non_negative_fct_exports_monthly_quantity_kg",
    "non_negative_fct_exports_monthly_value_usd",
    "non_negative_fct_exports_monthly_value_cny",
)

MARTS = ("fct_exports_monthly", "export_growth_monthly", "dim_partner", "dim_commodity", "dim_month", "fct_exports_cumulative")


LINEAGE = "EXCLUDE (load_id, source_load_ids)"


def marts_hash(path: Path, figures_only: bool = False) -> str:
    """A content hash of every served mart, ordered by all columns (figures_only: without load ids)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        digest = hashlib.sha256()
        for table in MARTS:
            exclude = LINEAGE if figures_only and table.startswith("fct_exports_monthly") else (
                "EXCLUDE (load_id)" if figures_only and table == "fct_exports_cumulative" else "")
            rows = con.execute(f"SELECT * {exclude} FROM marts.{table} ORDER BY ALL").fetchall()
            digest.update(f"{table}:{rows!r}".encode())
        return digest.hexdigest()
    finally:
        con.close()


def check_rows(ws: Workspace, run_id: str, working: bool = False) -> dict[str, tuple]:
    rows = ws.query(
        "SELECT check_name, severity, passed, observed FROM audit.check_results WHERE dagster_run_id = $r",
        {"r": run_id}, working=working,
    )
    return {name: (severity, passed, observed) for name, severity, passed, observed in rows}


def edit_sample_file(path: Path, edit) -> None:
    text = path.read_bytes().decode("gb18030")
    path.write_bytes(edit(text).encode("gb18030"))


def usa_june_line(text: str) -> str:
    return next(line for line in text.split("\r\n") if '"502"' in line and '"85051110"' in line)


def run_checks_only(ws: Workspace, names: list[str], instance: DagsterInstance | None = None, every_month: bool = False):
    """Run just the quality gate on the current working copy (as the UI's 'Execute checks' does),
    on `instance` (default: a new one, which has no record of a publish)."""
    from dagster_project import definitions as d

    os.environ["CUSTOMS_LANDING_DIR"] = str(ws.landing)
    os.environ["WAREHOUSE_PATH"] = str(ws.warehouse)
    keys = [k for k in d.defs.resolve_asset_graph().asset_check_keys if k.name in names]
    job = define_asset_job("checks_only", selection=AssetSelection.checks(*keys))
    defs = Definitions(assets=d.ASSETS, asset_checks=[d.quality_gate], jobs=[job], resources=d.RESOURCES)
    run_config = {"ops": {"quality_gate": {"config": {"every_month": every_month}}}}
    if instance is not None:
        return defs.resolve_job_def("checks_only").execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)
    with DagsterInstance.ephemeral() as instance:
        return defs.resolve_job_def("checks_only").execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)


def months_checked(result, check_name: str) -> str:
    """The months the gate says (in Dagster's record of the check) it looked at for `check_name`."""
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == check_name]
    return evaluation.metadata["months_checked"].value


def tamper(ws: Workspace, sql: str) -> None:
    con = duckdb.connect(str(ws.working_copy))
    try:
        con.execute(sql)
    finally:
        con.close()


def revise_march(landing: Path) -> None:
    """A revised March release: $10,000 more of magnets to the US (a plausible revision)."""
    march = landing / "exports" / "gacc_exports_202503.csv"
    edit_sample_file(march, lambda t: t.replace('"United States","27,680,329"', '"United States","27,690,329"', 1))


@pytest.fixture(scope="module")
def good_build(tmp_path_factory) -> Workspace:
    ws = make_workspace(tmp_path_factory.mktemp("gate"))
    copy_sample(ws.landing)
    result = ws.build()
    assert result.success
    ws.last_run_id = result.run_id
    return ws


def test_the_sample_passes_every_check(sample_build):
    """Every file `make run` loads: every blocking check passes; the one warning is the mirror
    gate's, on the months where a partner's own report is far outside its history."""
    results = check_rows(sample_build, sample_build.last_run_id)
    gx_checks = {name for name in results if not name.startswith("dbt:")}
    # 14 of the quality gate on the exports (partners_add_up_to_world_total among them), 4 of its unit
    # checks again on the imports, 2 of the mirror gate
    assert len(gx_checks) == 20
    assert {name for name in gx_checks if name.startswith("imports_")} == {
        "imports_units_match_declared_unit", "imports_no_kg_for_item_counted_codes", "imports_unit_value_not_extreme",
        "imports_unit_value_within_family_band"}
    # checked once: by dbt, not again by the gate
    assert not gx_checks & {"fact_keys_unique", "quantities_and_values_not_negative"}
    failed = {name: r[0] for name, r in results.items() if not r[1]}
    assert failed == {"mirror_within_partner_history": "WARN"}
    # the first build is a full one: every month checked
    assert all(r[2].endswith("months checked: all months") or r[2].endswith("months checked: not by month")
               for name, r in results.items() if name in gx_checks)
    assert any(name.startswith("dbt:") for name in results)  # dbt tests are recorded too
    dbt_runs = [r for r in sample_build.query("SELECT check_name, severity, passed FROM audit.check_results WHERE check_name LIKE 'dbt:%'")]
    assert {(name[4:], severity, passed) for name, severity, passed in dbt_runs if name[4:] in FACT_DBT_TESTS} == {
        (name, "ERROR", True) for name in FACT_DBT_TESTS}
    assert (sample_build.warehouse.parent / "quality" / "index.html").exists()  # GX data docs


@pytest.mark.slow
def test_tonnes_declared_as_kg_blocks_publishing_and_keeps_served_data(good_build):
    ws = good_build
    before = marts_hash(ws.warehouse)
    figures_before = marts_hash(ws.warehouse, figures_only=True)
    # a revised June file in which 353 t to the US was declared as 353 kg
    june = ws.landing / "exports" / "gacc_exports_202506.csv"
    original = june.read_bytes()
    edit_sample_file(june, lambda t: t.replace(usa_june_line(t), usa_june_line(t).replace('"353,000"', '"353"')))
    try:
        result = ws.build()
        assert not result.success
        served = check_rows(ws, result.run_id)  # the served file records the failed run
        assert served["unit_value_not_extreme"][:2] == ("ERROR", False)
        assert "unexpected" in served["unit_value_not_extreme"][2]
        assert marts_hash(ws.warehouse) == before  # ...while its marts stay at the last good state
        # the working copy did build the bad figure; the gate caught it before publication
        assert ws.scalar(
            "SELECT quantity_kg FROM marts.fct_exports_monthly WHERE month = DATE '2025-06-01' "
            "AND hs8 = '85051110' AND partner_code = '502'", working=True,
        ) == 353
        assert not any(e.asset_key and e.asset_key.path == ["serving", "warehouse"]
                       for e in result.get_asset_materialization_events())
        # the build was incremental: the gate checked the month rebuilt (with its trailing window)
        assert "months checked: 2025-06, against the trailing 12 months (2024-07..2025-06)" in served["unit_value_not_extreme"][2]
        assert "months checked: 2025-06" in served["rows_and_totals_reconcile_raw_staging_fact"][2]
        assert months_checked(result.runs[-1], "unit_value_not_extreme") == "2025-06, against the trailing 12 months (2024-07..2025-06)"
        # a run with nothing new to build checks the months built since the last publish: June
        # again (its gate failed, so nothing was published), still blocked
        again = ws.build()
        assert not again.success
        served = check_rows(ws, again.run_id)
        assert served["unit_value_not_extreme"][:2] == ("ERROR", False)
        assert served["rows_and_totals_reconcile_raw_staging_fact"][2].endswith("months checked: 2025-06")
        assert marts_hash(ws.warehouse) == before
    finally:
        june.write_bytes(original)
        os.utime(june)  # a later mtime: the good file is a newer release again
    # the good file again is the latest release: the same figures, from a new load
    result = ws.build()
    assert result.success and marts_hash(ws.warehouse, figures_only=True) == figures_before
    assert check_rows(ws, result.run_id)["rows_and_totals_reconcile_raw_staging_fact"][2].endswith("months checked: 2025-06")


@pytest.mark.slow
def test_after_a_publish_the_gate_checks_the_months_built_and_no_other(good_build):
    ws = good_build
    revise_march(ws.landing)
    result = ws.build()
    assert result.success
    assert [r.dagster_run.tags.get("dagster/asset_partition_range_start") for r in result.runs[1:]] == ["2025-03"]
    served = check_rows(ws, result.run_id)
    assert all(passed for _, passed, _ in served.values())
    # March alone (with the months around it each check needs), not June's revision published before
    assert served["rows_and_totals_reconcile_raw_staging_fact"][2].endswith("months checked: 2025-03")
    assert served["unit_value_not_extreme"][2].endswith("months checked: 2025-03, against the trailing 12 months (2024-04..2025-03)")
    # the growth metrics March reaches (MoM, YoY, year to date), as far as months are loaded
    assert served["partners_sum_to_world"][2].endswith("months checked: growth metrics of 2025-03..2025-12")
    assert served["all_landing_files_loaded"][2].endswith("months checked: not by month")
    run = result.runs[-1]
    assert months_checked(run, "rows_and_totals_reconcile_raw_staging_fact") == "2025-03"
    assert ws.scalar("SELECT value_usd FROM marts.fct_exports_monthly WHERE month = DATE '2025-03-01' "
                     "AND hs8 = '85051110' AND partner_code = '502'") == 27_690_329
    # published: the next gate has nothing by month to check; the gate run alone on request checks everything
    with ws.instance() as instance:
        rerun = run_checks_only(ws, ["rows_and_totals_reconcile_raw_staging_fact"], instance=instance)
    assert months_checked(rerun, "rows_and_totals_reconcile_raw_staging_fact") == "none (no month rebuilt since the last publish)"
    with ws.instance() as instance:
        everything = run_checks_only(ws, ["rows_and_totals_reconcile_raw_staging_fact"], instance=instance, every_month=True)
    assert everything.success
    assert months_checked(everything, "rows_and_totals_reconcile_raw_staging_fact") == "all months"


def test_a_partner_total_off_the_world_fails(sample_copy):
    ws = sample_copy
    before = marts_hash(ws.warehouse)
    # a code whose WLD row is the sum of its partners (85051110's is the world-total download's)
    tamper(ws, "UPDATE marts.export_growth_monthly SET quantity_kg = quantity_kg + 1000 "
               "WHERE partner_iso3 = 'WLD' AND hs8 = '28469019' AND month = DATE '2025-06-01'")
    result = run_checks_only(ws, ["partners_sum_to_world"])
    assert not result.success
    served = check_rows(ws, result.run_id)
    assert served["partners_sum_to_world"][:2] == ("ERROR", False)
    # GX validated a row per month; the failing one names the month, the codes off and the code
    sample = json.loads(ws.query("SELECT failing_sample FROM audit.check_results WHERE dagster_run_id = $r "
                                 "AND check_name = 'partners_sum_to_world'", {"r": result.run_id})[0][0])
    assert [(str(r["month"])[:7], r["codes_off"], r["worst_code"], round(r["kg_diff"])) for r in sample] == [
        ("2025-06", 1, "28469019", 1000)]
    assert marts_hash(ws.warehouse) == before


def test_a_row_lost_between_staging_and_the_fact_fails(sample_copy):
    ws = sample_copy
    tamper(ws, "DELETE FROM marts.fct_exports_monthly WHERE month = DATE '2025-03-01' AND partner_code = '304' AND hs8 = '85051110'")
    result = run_checks_only(ws, ["rows_and_totals_reconcile_raw_staging_fact", "units_match_declared_unit"])
    assert not result.success
    served = check_rows(ws, result.run_id)
    assert served["rows_and_totals_reconcile_raw_staging_fact"][:2] == ("ERROR", False)
    assert served["units_match_declared_unit"][1] is True  # a row missing is not a unit error


def test_the_sample_imports_pass_their_unit_checks_and_tonnes_as_kg_fail_them(sample_build, tmp_path):
    """The imports get the unit checks of the exports: the sample's imports pass them; May 2025's
    Myanmar row of 28469019 in tonnes where kg are declared fails the imports' own blocking check,
    which names the row, while the exports' check is not fooled into firing."""
    import shutil

    from dagster_project.lib.quality.checks import CHECKS
    from dagster_project.lib.quality.gx_suites import run_checks

    names = ("imports_unit_value_not_extreme", "imports_units_match_declared_unit", "unit_value_not_extreme")
    checks = tuple(c for c in CHECKS if c.name in names)
    assert {c.asset for c in checks} == {"marts/fct_imports_monthly", "marts/fct_exports_monthly"}
    assert all(c.severity == "ERROR" for c in checks)
    imports_checks = dict(sample_build.query(
        "SELECT check_name, passed FROM audit.check_results WHERE check_name LIKE 'imports\\_%' ESCAPE '\\'"))
    assert len(imports_checks) == 4 and all(imports_checks.values())

    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(sample_build.working_copy, copy)
    con = duckdb.connect(str(copy))
    try:
        row = "month = DATE '2025-05-01' AND hs8 = '28469019' AND partner_iso3 = 'MMR'"
        assert con.execute(f"SELECT quantity_kg FROM marts.fct_imports_monthly WHERE {row}").fetchone()[0] == 6_213_609
        con.execute(f"UPDATE marts.fct_imports_monthly SET quantity_kg = 6_213.609 WHERE {row}")
        outcomes = {o.check.name: o for o in run_checks(con, checks=checks)}
    finally:
        con.close()
    assert not outcomes["imports_unit_value_not_extreme"].passed
    assert outcomes["unit_value_not_extreme"].passed
    assert outcomes["imports_units_match_declared_unit"].passed  # the unit code still says kg
    sample = outcomes["imports_unit_value_not_extreme"].failing_sample
    assert [(str(r["month"])[:7], r["hs8"], r["partner_iso3"]) for r in sample] == [("2025-05", "28469019", "MMR")]
    assert sample[0]["ratio"] >= 900


@pytest.mark.slow
def test_a_duplicated_partner_row_is_rejected_and_reported(workspace):
    copy_sample(workspace.landing, months=["202505", "202506", "202507"])
    june = workspace.landing / "exports" / "gacc_exports_202506.csv"
    edit_sample_file(june, lambda t: t.replace(usa_june_line(t), usa_june_line(t) + "\r\n" + usa_june_line(t)))
    result = workspace.build()
    assert result.success  # the other files still load and publish
    rejected = workspace.query("SELECT file_path, reason FROM audit.rejected_files")
    assert rejected[0][0] == "exports/gacc_exports_202506.csv" and "duplicate key" in rejected[0][1]
    checks = check_rows(workspace, result.run_id)
    assert checks["all_landing_files_loaded"][:2] == ("WARN", False)
    assert checks["no_gap_months"][:2] == ("WARN", False)  # June is now missing


@pytest.mark.slow
def test_a_missing_month_warns_and_still_publishes(workspace):
    copy_sample(workspace.landing, months=["202503", "202505", "202506"])
    result = workspace.build()
    assert result.success
    checks = check_rows(workspace, result.run_id)
    assert checks["no_gap_months"][:2] == ("WARN", False)
    assert all(passed for name, (sev, passed, _) in checks.items() if sev == "ERROR")
    # published: the served file has the data despite the warning
    assert workspace.scalar("SELECT count(DISTINCT month) FROM marts.fct_exports_monthly") == 3


@pytest.mark.slow
def test_cny_values_summed_as_usd_fail_the_rate_check(workspace):
    copy_sample(workspace.landing, months=["202505", "202506"])
    june = workspace.landing / "exports" / "gacc_exports_202506.csv"
    text = june.read_bytes().decode("gb18030")
    # the same June download in CNY, and a "USD" revision that actually carries the CNY numbers
    import re

    def to_cny(match):
        return '"' + f"{round(int(match.group(1).replace(',', '')) * 7.18):,}" + '",\r\n'

    cny_text = re.sub(r'"([0-9,]+)",\r\n', to_cny, text)  # the value is the last column of the zh sample
    cny_text = cny_text.replace('"美元"', '"人民币"', 1)
    (workspace.landing / "exports" / "gacc_exports_202506_cny.csv").write_bytes(cny_text.encode("gb18030"))
    (workspace.landing / "exports" / "gacc_exports_202506_usd_revised.csv").write_bytes(
        cny_text.replace('"人民币"', '"美元"', 1).encode("gb18030"))
    result = workspace.build()
    assert result.success  # warnings only
    checks = check_rows(workspace, result.run_id)
    assert checks["cny_usd_rate_plausible"][:2] == ("WARN", False)
    assert "1.0" in checks["cny_usd_rate_plausible"][2]
    fct = workspace.query(
        "SELECT value_usd, value_cny, quantity_kg FROM marts.fct_exports_monthly "
        "WHERE month = DATE '2025-06-01' AND hs8 = '85051110' AND partner_code = '502'")[0]
    assert fct[0] == fct[1] and float(fct[2]) == 353_000  # quantity not doubled


@pytest.mark.slow
def test_make_run_prints_failed_checks_and_exits_non_zero(tmp_path):
    ws = make_workspace(tmp_path)
    copy_sample(ws.landing, months=["202505", "202506"])
    june = ws.landing / "exports" / "gacc_exports_202506.csv"
    edit_sample_file(june, lambda t: t.replace(usa_june_line(t), usa_june_line(t).replace('"353,000"', '"353"')))
    env = dict(os.environ, CUSTOMS_LANDING_DIR=str(ws.landing), WAREHOUSE_PATH=str(ws.warehouse),
               DAGSTER_HOME=str(tmp_path / "dagster_home"))
    out = subprocess.run([sys.executable, "-m", "dagster_project.cli", "build"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert "Failed checks" in out.stdout and "[ERROR] unit_value_not_extreme" in out.stdout


def test_an_incremental_gate_sees_a_month_as_the_full_gate_does(sample_build, tmp_path):
    """The scoped queries give a rebuilt month the figures a full check gives it."""
    import datetime as dt
    import shutil

    from dagster_project.lib.months import months_between
    from dagster_project.lib.quality.checks import CHECKS
    from dagster_project.lib.quality.scope import render_full, scope_of
    from dagster_project.lib.quality.unit_checks import PREPARE, prepare

    working = sample_build.working_copy
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(working, copy)
    con = duckdb.connect(str(copy))
    try:
        june = dt.date(2025, 6, 1)
        scope = scope_of(con, [june])
        # June's growth metrics reach through December of the next year; the sample ends in 2025-12
        assert scope.months == (june,) and scope.growth_months == tuple(months_between(june, dt.date(2025, 12, 1)))
        assert scope_of(con, months_between(dt.date(2024, 1, 1), dt.date(2025, 12, 1))) is None  # every month: a full gate
        columns = "month, hs8, partner_code, ratio_to_median, mad_score, months_of_history >= 6"
        prepare(con, "_unit_values")
        full = con.execute(f"SELECT {columns} FROM _unit_values WHERE month = DATE '2025-06-01' ORDER BY ALL").fetchall()
        prepare(con, "_unit_values", scope)
        scoped = con.execute(f"SELECT {columns} FROM _unit_values ORDER BY ALL").fetchall()
        assert full and scoped == full
        # it reads the month and the 11 before it, no further
        sql = " ".join(scope.render(statement) for statement in PREPARE["_unit_values"])
        assert "date '2024-07-01'" in sql and "date '2024-06-01'" not in sql
        # the reconciliation over June alone, the world totals over the growth months rebuilt
        for name in ("rows_and_totals_reconcile_raw_staging_fact", "partners_sum_to_world"):
            check = next(c for c in CHECKS if c.name == name)
            frame = con.execute(scope.render(check.population_sql)).df()
            diffs = frame[[c for c in frame.columns if c.endswith("_diff")]]
            assert len(frame) and (diffs.max().max() <= 0.01) and frame["codes" if "codes" in frame else "keys"].min() >= 1
            assert len(frame) < len(con.execute(render_full(check.population_sql)).fetchall())
        # a row per month for the growth months rebuilt, not one per code and month
        check = next(c for c in CHECKS if c.name == "partners_sum_to_world")
        months = con.execute(scope.render(check.population_sql)).df()["month"]
        assert len(months) == months.nunique() and set(months.dt.date) == set(scope.growth_months)
    finally:
        con.close()


def test_the_dbt_tests_catch_what_the_gate_no_longer_checks(sample_build, tmp_path):
    """A duplicated fact key and a negative quantity fail the fact table's dbt tests (error
    severity: the dbt build fails and nothing is published), over the months built."""
    import shutil

    from dagster_project.lib.settings import DBT_PROJECT_DIR, dbt_executable

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(sample_build.working_copy, f"{warehouse}.build")
    con = duckdb.connect(f"{warehouse}.build")
    try:
        con.execute("INSERT INTO marts.fct_exports_monthly SELECT * FROM marts.fct_exports_monthly "
                    "WHERE month = DATE '2025-06-01' AND hs8 = '85051110' AND partner_code = '502'")
        con.execute("UPDATE marts.fct_exports_monthly SET quantity = -1 "
                    "WHERE month = DATE '2025-05-01' AND hs8 = '85051110' AND partner_code = '502'")
    finally:
        con.close()

    def failing_tests(*extra: str) -> set[str]:
        target = tmp_path / f"target{len(extra)}"
        subprocess.run(
            [dbt_executable(), "test", "--select", "fct_exports_monthly,test_type:data", "--project-dir", str(DBT_PROJECT_DIR),
             "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(target), *extra],
            env={**os.environ, "WAREHOUSE_PATH": str(warehouse)}, capture_output=True, text=True, timeout=300,
        )
        results = json.loads((target / "run_results.json").read_text())["results"]
        return {r["unique_id"].split(".")[2] for r in results if r["status"] == "fail"}

    # a build of June tests June: the duplicate fails, May's negative quantity is not June's
    assert failing_tests("--vars", '{"first_month": "2025-06-01", "last_month": "2025-06-01"}') == {FACT_DBT_TESTS[0]}
    # a build of every month tests every month
    assert failing_tests() == {FACT_DBT_TESTS[0], "non_negative_fct_exports_monthly_quantity"}
