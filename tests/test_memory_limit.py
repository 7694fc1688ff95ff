"""DuckDB's memory limit (CUSTOMS_DUCKDB_MEMORY_LIMIT): a build that runs out says which setting to raise."""

from __future__ import annotations

import os

import duckdb
import pytest

from dagster import DagsterInstance

from gacc_files import copy_sample


def _build(workspace, run_config=None):
    """The first build as the CLI makes it; with run_config, a run of the monthly models for every
    month (2024-01..2025-12), as the UI's launchpad would start one."""
    from dagster_project.definitions import defs
    from dagster_project.defs.transform.dbt_assets import MONTHLY_KEYS

    os.environ["CUSTOMS_LANDING_DIR"] = str(workspace.landing)
    os.environ["WAREHOUSE_PATH"] = str(workspace.warehouse)
    if run_config is None:
        return workspace.build()
    with DagsterInstance.ephemeral() as instance:
        return defs.resolve_job_def("build_warehouse").execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False,
            asset_selection=sorted(MONTHLY_KEYS, key=lambda k: k.path),
            tags={"dagster/asset_partition_range_start": "2024-01", "dagster/asset_partition_range_end": "2025-12"},
        )


@pytest.mark.slow
def test_dbt_out_of_memory_names_the_setting_and_keeps_the_served_file(workspace, monkeypatch):
    copy_sample(workspace.landing)
    assert _build(workspace).success
    marts_sql = "SELECT * FROM marts.export_growth_monthly ORDER BY ALL"
    served = workspace.query(marts_sql)

    # nothing new to load, so only dbt's full refresh needs memory: far too little of it
    monkeypatch.setenv("CUSTOMS_DUCKDB_MEMORY_LIMIT", "24MB")
    result = _build(workspace, {"ops": {"customs_monthly_models": {"config": {"full_refresh": True}}}})
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["customs_monthly_models"]
    message = failures[0].step_failure_data.error.cause.message if failures[0].step_failure_data.error.cause else ""
    message = message or failures[0].step_failure_data.error.message
    assert "dbt ran out of DuckDB memory (CUSTOMS_DUCKDB_MEMORY_LIMIT=24MB" in message
    assert "CUSTOMS_DUCKDB_MEMORY_LIMIT=8GB make run" in message
    assert workspace.query(marts_sql) == served  # BI readers keep the last good marts


def test_every_connection_of_the_dagster_process_has_the_limit(tmp_path):
    """Publishing, the Parquet export and the report open DuckDB through db.open_db: DuckDB's own
    default (80% of RAM) let a national-size export peak at 13 GB beside a 1 GB setting."""
    from dagster_project.lib.warehouse import database as db
    from dagster_project.lib.warehouse import working_copy as wh
    from dagster_project.lib.settings import Settings

    settings = Settings(landing_dir=tmp_path / "landing", warehouse_path=tmp_path / "warehouse.duckdb")
    wh.ensure_working_copy(settings)
    with wh.connect_working(settings) as con:
        expected = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    default = duckdb.connect().execute("SELECT current_setting('memory_limit')").fetchone()[0]
    wh.publish(settings)
    for con in (db.open_db(settings.warehouse_path, read_only=True), db.open_db()):
        try:
            assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == expected != default
        finally:
            con.close()
