import json
from typing import Any, Mapping

from dagster import AssetCheckResult, AssetExecutionContext, AssetKey, Config, MetadataValue, Output
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from ..lib import warehouse as wh
from ..lib.audit import record_check_results
from ..lib.headline import headline_markdown, headline_rows
from ..lib.incremental import dbt_vars, mark_built, months_to_build, unbuilt_loads
from ..lib.settings import DBT_PROJECT_DIR
from .pools import DUCKDB_POOL
from .resources import WarehouseResource

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# `dagster dev` re-parses on start; the CLI, tests and CI use the manifest `make` prepares.
# A clean clone without one still loads: parse once here (about 10 s) rather than fail.
dbt_project.prepare_if_dev()
if not dbt_project.manifest_path.exists():
    dbt_project.preparer.prepare(dbt_project)


class CustomsDbtTranslator(DagsterDbtTranslator):
    """Asset keys follow the DuckDB schema (marts/fct_exports_monthly), groups the dbt folder."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or "main"
        return AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


TRANSLATOR = CustomsDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

MART_ROW_COUNT_SQL = "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() WHERE schema_name IN ('marts', 'intermediate', 'reference')"


class DbtBuildConfig(Config):
    """`full_refresh` rebuilds every month (after changing a model); otherwise only the months new loads touch."""

    full_refresh: bool = False


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=TRANSLATOR, pool=DUCKDB_POOL)
def customs_dbt_models(context: AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Seeds, staging, intermediate and marts, with their dbt tests as asset checks."""
    settings = warehouse.settings()
    wh.ensure_working_copy(settings)
    args = ["build"]
    with wh.connect_working(settings) as con:
        pending = unbuilt_loads(con)
        variables = None if config.full_refresh else dbt_vars(months_to_build(con))
    if config.full_refresh:
        args.append("--full-refresh")
    elif variables is not None:
        args += ["--vars", json.dumps(variables)]
        context.log.info(f"incremental build of {len(variables['months'])} month(s): {', '.join(variables['months'][:12])}")
    invocation = dbt.cli(args, context=context, raise_on_error=False)
    # Collect the events first: row counts and previews are read from DuckDB once dbt has
    # closed the file (a second connection while dbt writes would hit DuckDB's lock).
    events = list(invocation.stream())
    succeeded = invocation.is_successful()

    checks = [e for e in events if isinstance(e, AssetCheckResult)]
    with wh.connect_working(settings) as con:
        if succeeded:
            mark_built(con, pending, context.run.run_id)
        record_check_results(
            con,
            context.run.run_id,
            [
                (f"dbt:{c.check_name}", c.asset_key.to_user_string(), c.severity.value, c.passed,
                 str(c.metadata.get("dagster_dbt/failed_row_count", MetadataValue.int(0)).value) + " failing rows", c.description)
                for c in checks
            ],
        )
        counts = {f"{s}/{t}": n for s, t, n in con.execute(MART_ROW_COUNT_SQL).fetchall()}
        headline = headline_markdown(headline_rows(con)) if "marts/export_growth_monthly" in counts else ""

    for event in events:
        if isinstance(event, Output):
            key = context.asset_key_for_output(event.output_name).to_user_string()
            metadata = {}
            if key in counts:
                metadata["dagster/row_count"] = counts[key]
            if key == "marts/export_growth_monthly" and headline:
                metadata["headline_85051110"] = MetadataValue.md(headline)
            yield event.with_metadata({**event.metadata, **metadata})
        else:
            yield event
    if not succeeded:
        # BI readers keep the last good marts, but learn that this run failed and why.
        wh.publish_audit_only(settings)
        raise invocation.get_error() or RuntimeError("dbt build failed")
