"""The Dagster code location: `dagster dev` (make dev) and `make run` both load this."""

from dagster import Definitions, in_process_executor
from dagster_dbt import DbtCliResource

from dagster_project.defs.quality.checks import mirror_gate, quality_gate
from dagster_project.defs.transform.dbt_assets import customs_dbt_models, customs_mirror_models, customs_monthly_models, dbt_project
from dagster_project.defs.jobs import build_warehouse_job
from dagster_project.defs.ingest.assets import raw_customs_extracts
from dagster_project.defs.resources import WarehouseResource
from dagster_project.defs.schedules import monthly_after_gacc_release
from dagster_project.defs.sensors import build_months_after_ingest, landing_files_sensor
from dagster_project.defs.serving.docs import dbt_docs_site
from dagster_project.defs.serving.exports import parquet_exports
from dagster_project.defs.serving.mirror_chart import mirror_trade_chart
from dagster_project.defs.serving.report import analyst_report
from dagster_project.defs.serving.warehouse import served_warehouse
from dagster_project.lib.settings import dbt_executable, export_to_environ

export_to_environ()

ASSETS = [raw_customs_extracts, customs_monthly_models, customs_dbt_models, customs_mirror_models, served_warehouse, parquet_exports, analyst_report, dbt_docs_site,
          mirror_trade_chart]

DBT_EXECUTABLE = dbt_executable()

RESOURCES = {
    "warehouse": WarehouseResource(),
    "dbt": DbtCliResource(project_dir=dbt_project, profiles_dir=str(dbt_project.profiles_dir), dbt_executable=DBT_EXECUTABLE),
}

defs = Definitions(
    assets=ASSETS,
    asset_checks=[quality_gate, mirror_gate],
    jobs=[build_warehouse_job],
    schedules=[monthly_after_gacc_release],
    sensors=[landing_files_sensor, build_months_after_ingest],
    resources=RESOURCES,
    # DuckDB takes one writer per file and every step here writes it, so steps run one after
    # another in the run's own process: no parallel writers, no per-step subprocess start-up
    # and no per-step dbt manifest parse.
    executor=in_process_executor,
)
