"""The code location loads with every asset, check, job, schedule and sensor users expect."""

from dagster import AssetKey

from dagster_project.definitions import defs

EXPECTED_ASSETS = {
    "raw/customs_rows", "raw/customs_loads", "audit/rejected_files",
    "reference/gacc_partners", "reference/gacc_commodities", "reference/gacc_units",
    "reference/gacc_unit_aliases", "reference/gacc_customs_regimes", "reference/gacc_provinces",
    "reference/commodity_families", "reference/published_figures",
    "staging/stg_gacc__customs_rows", "staging/stg_gacc__customs_loads",
    "intermediate/int_customs_facts_history", "intermediate/int_customs_facts_current",
    "intermediate/int_trade_monthly", "intermediate/int_trade_cumulative",
    "marts/dim_partner", "marts/dim_commodity", "marts/dim_month",
    "marts/fct_exports_monthly", "marts/fct_exports_cumulative", "marts/export_growth_monthly",
    "marts/export_growth_rare_earths", "serving/warehouse",
    "intermediate/int_trade_by_grouping_monthly", "marts/export_growth_by_province", "marts/export_growth_by_regime",
    "marts/fct_imports_monthly", "marts/import_growth_monthly", "marts/v_trade_balance_monthly",
}

EXPECTED_CHECKS = {
    ("marts/fct_exports_monthly", "unique_combination_fct_exports_monthly_month__hs8__partner_code"),
    ("marts/fct_exports_monthly", "not_null_fct_exports_monthly_month"),
    ("marts/export_growth_monthly", "unique_combination_export_growth_monthly_month__hs8__partner_iso3"),
    ("marts/dim_partner", "unique_dim_partner_partner_code"),
    ("staging/stg_gacc__customs_rows", "non_negative_stg_gacc__customs_rows_quantity_kg"),
}


def _asset_keys():
    return {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}


def test_every_expected_asset_is_defined():
    missing = EXPECTED_ASSETS - _asset_keys()
    assert not missing, f"missing assets: {sorted(missing)}"


def test_dbt_tests_show_as_asset_checks():
    checks = {(k.asset_key.to_user_string(), k.name) for k in defs.resolve_asset_graph().asset_check_keys}
    missing = EXPECTED_CHECKS - checks
    assert not missing, f"missing checks: {sorted(missing)}"
    marts_checks = [c for c in checks if c[0].startswith("marts/")]
    assert len(marts_checks) >= 20


def test_jobs_schedules_sensors():
    assert defs.resolve_job_def("build_warehouse") is not None
    schedule = defs.resolve_schedule_def("monthly_after_gacc_release")
    assert schedule.cron_schedule == "0 6 21 * *"
    assert defs.resolve_sensor_def("landing_files_sensor") is not None


def test_assets_carry_kinds_groups_and_descriptions():
    graph = defs.resolve_asset_graph()
    for key in ("raw/customs_rows", "marts/fct_exports_monthly", "serving/warehouse"):
        node = graph.get(AssetKey.from_user_string(key))
        assert node.description, key
        assert node.group_name, key
        assert node.kinds, key
