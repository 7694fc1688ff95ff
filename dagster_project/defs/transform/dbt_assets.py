"""The dbt project as Dagster assets: the monthly incremental models, and the rest.

As in Dagster's own dbt examples, two `@dbt_assets` share one `DbtProject`:

* `customs_monthly_models`: the incremental models (`config.materialized:incremental`),
  partitioned by month (customs_month). A run of a partition range passes the range to dbt as
  the vars `first_month` / `last_month`; dbt rebuilds those months and tests them.
* `customs_dbt_models`: everything else (seeds, staging views, dims, cumulative tables, BI
  views), without partitions.

A model's code version is its SQL's checksum (dagster-dbt's default). When the SQL of a
monthly model changed since its last materialisation, its next run is a full refresh, so no
month keeps what the old SQL made.
"""


import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Config,
    MetadataValue,
    Output,
)
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from dagster_project.defs.partitions import CUSTOMS_MONTH, code_versions
from dagster_project.defs.resources import DUCKDB_POOL, WarehouseResource
from dagster_project.lib.months import add_months, first_of_month, growth_months, month_label, months_between
from dagster_project.lib.quality.audit import record_check_results
from dagster_project.lib.serving.headline import headline_markdown, headline_rows
from dagster_project.lib.settings import DBT_PROJECT_DIR, VENV_BIN, Settings, dbt_executable
from dagster_project.lib.transform.months_to_build import loaded_month_span
from dagster_project.lib.warehouse import working_copy as wh

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# dagster-dbt's parse under `dagster dev` (prepare_if_dev) runs the `dbt` it finds on PATH, and
# `make dev` runs the venv's dagster without activating the venv: put the venv's dbt first.
if Path(dbt_executable()).parent == VENV_BIN and str(VENV_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join(filter(None, [str(VENV_BIN), os.environ.get("PATH")]))

# `dagster dev` re-parses on start; the CLI, tests and CI use the manifest `make` prepares.
# A clean clone without one still loads: parse once here (about 10 s) rather than fail.
dbt_project.prepare_if_dev()
if not dbt_project.manifest_path.exists():
    dbt_project.preparer.prepare(dbt_project)

MONTHLY_SELECT = "config.materialized:incremental"
# The mirror statistics (partner-reported imports beside the facts): a step of their own, after
# the facts and their quality gate, which they read (a step that built them with the dims would
# have to run both before and after the gate, and Dagster splits it in two). Their staging view
# (stg_comtrade__partner_imports) is built with the other staging views, before the gate: tagged
# here, it split this asset in two, one more dbt invocation (about 5 s of dbt start-up and parse).
MIRROR_SELECT = "tag:mirror"

# The models are split over two assets, and a run may build the dims in one step and the facts
# in the next: a test of the facts against a dim (relationships) must run with the facts, not
# with the dim, so dbt selects tests "buildable" (all their parents built in this step or
# upstream of it), not "eager" (any parent). dagster-dbt still sets its own value when it runs
# a subset of the checks (it overrides the environment for that invocation).
os.environ.setdefault("DBT_INDIRECT_SELECTION", "buildable")


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

ROW_COUNTS_SQL = (
    "SELECT schema_name || '/' || table_name, estimated_size FROM duckdb_tables() "
    "WHERE schema_name IN ('marts', 'intermediate', 'reference')"
)
GROWTH_KEY = AssetKey(["marts", "export_growth_monthly"])


class DbtBuildConfig(Config):
    """`full_refresh` rebuilds every month of the monthly models (dbt's --full-refresh)."""

    full_refresh: bool = False


def _discard_spill_files(settings: Settings) -> None:
    """Remove what a killed build left in DuckDB's spill folder (`<working copy>.tmp`, profiles.yml).

    DuckDB deletes its own spill files when it closes; a killed process cannot. Runs write the
    working copy one at a time, so whatever is there now is stale.
    """
    spill = settings.working_path.with_name(settings.working_path.name + ".tmp")
    if spill.is_dir():
        for leftover in spill.iterdir():
            if leftover.is_file():
                leftover.unlink(missing_ok=True)


def _dbt_build(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    args: list[str],
    months_built: str,
    growth_built: str,
) -> Iterator:
    """Run `dbt <args>` for the selected assets on the working copy and yield its events, with
    row counts from DuckDB (read once dbt has closed the file: DuckDB takes one writer)."""
    settings = warehouse.settings()
    wh.ensure_working_copy(settings)
    _discard_spill_files(settings)
    invocation = dbt.cli(
        args, context=context, raise_on_error=False, target_path=settings.dbt_target(context.op_execution_context.op.name)
    )
    events = list(invocation.stream())
    succeeded = invocation.is_successful()
    checks = [e for e in events if isinstance(e, AssetCheckResult)]
    with wh.connect_working(settings) as con:
        record_check_results(
            con,
            context.run.run_id,
            [
                (f"dbt:{c.check_name}", c.asset_key.to_user_string(), c.severity.value, c.passed,
                 str(c.metadata.get("dagster_dbt/failed_row_count", MetadataValue.int(0)).value) + " failing rows", c.description)
                for c in checks
            ],
        )
        counts = dict(con.execute(ROW_COUNTS_SQL).fetchall())
        outputs = [e for e in events if isinstance(e, Output)]
        growth_output = any(context.asset_key_for_output(o.output_name) == GROWTH_KEY for o in outputs)
        headline = headline_markdown(headline_rows(con)) if growth_output else ""
    for event in events:
        if isinstance(event, Output):
            if not succeeded:
                # A model built beside a failing test or model is not recorded as built: Dagster's
                # record then sends its months to the next build, which rebuilds and tests them again.
                continue
            key = context.asset_key_for_output(event.output_name)
            metadata: dict[str, Any] = {}
            if context.assets_def.partitions_def is not None:
                metadata["months_built"] = growth_built if key == GROWTH_KEY else months_built
            if key.to_user_string() in counts:
                metadata["dagster/row_count"] = counts[key.to_user_string()]
            if key == GROWTH_KEY and headline:
                metadata["headline_85051110"] = MetadataValue.md(headline)
            event = event.with_metadata({**event.metadata, **metadata})
        yield event
    if not succeeded:
        # BI readers keep the last good marts, but learn that this run failed and why.
        wh.publish_audit_only(settings)
        error = invocation.get_error() or RuntimeError("dbt build failed")
        if "Out of Memory Error" in str(error):
            limit = os.environ.get("CUSTOMS_DUCKDB_MEMORY_LIMIT", "1GB")
            raise RuntimeError(
                f"dbt ran out of DuckDB memory (CUSTOMS_DUCKDB_MEMORY_LIMIT={limit}, spilling to {settings.working_path}.tmp): "
                "raise the limit, e.g. CUSTOMS_DUCKDB_MEMORY_LIMIT=8GB make run; a national-size warehouse "
                "(~50M rows) needs more than the default 1GB (docs/size_and_memory.md)"
            ) from error
        raise error


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=MONTHLY_SELECT,
    dagster_dbt_translator=TRANSLATOR,
    partitions_def=CUSTOMS_MONTH,
    # A backfill of a range of months (UI) is one run: one dbt build of those months.
    backfill_policy=BackfillPolicy.single_run(),
    pool=DUCKDB_POOL,
)
def customs_monthly_models(
    context: AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """The models rebuilt month by month (history, monthly facts, growth), with their dbt tests.

    A run of a range of months rebuilds and tests those months and the growth metrics of the
    months that compare with them. It is a full refresh (every month) when asked, when a
    model's SQL changed since it was last built, or when the range covers every loaded month
    (creating the tables anew needs less memory than replacing all their rows).
    """
    window = context.partition_time_window
    first, last = first_of_month(window.start.date()), add_months(first_of_month(window.end.date()), -1)
    changed = sorted(k.to_user_string() for k in code_versions(context.instance, context.assets_def, context.selected_asset_keys)[0])
    with warehouse.connect() as con:
        span = loaded_month_span(con)
    covers_all = span is not None and first <= span[0] and last >= span[1]
    args = ["build"]
    if config.full_refresh or changed or covers_all:
        why = ("asked" if config.full_refresh else f"the SQL of {', '.join(changed)} changed" if changed
               else "the range covers every loaded month")
        context.log.info(f"full refresh: every month is rebuilt ({why})")
        args.append("--full-refresh")
        months_built = growth_built = "every month"
    else:
        args += ["--vars", json.dumps({"first_month": f"{first:%Y-%m-%d}", "last_month": f"{last:%Y-%m-%d}"})]
        months_built, growth_built = month_label(months_between(first, last)), month_label(growth_months(first, last))
        context.log.info(f"incremental build of {months_built}; growth metrics of {growth_built}")
    yield from _dbt_build(context, dbt, warehouse, args, months_built, growth_built)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=f"{MONTHLY_SELECT} {MIRROR_SELECT}",
    dagster_dbt_translator=TRANSLATOR,
    pool=DUCKDB_POOL,
)
def customs_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Seeds, staging views, dims, cumulative tables and BI views, with their dbt tests."""
    yield from _dbt_build(context, dbt, warehouse, ["build"], "", "")


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=MIRROR_SELECT,
    dagster_dbt_translator=TRANSLATOR,
    pool=DUCKDB_POOL,
)
def customs_mirror_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Mirror statistics: partner-reported imports from China beside China's exports (plain tables,
    rebuilt whole: a few rows per partner, code and month)."""
    yield from _dbt_build(context, dbt, warehouse, ["build"], "", "")


MONTHLY_KEYS = frozenset(customs_monthly_models.keys)
# Rebuilt by every build that built months, and by a build that loaded only Comtrade files (defs/jobs.py).
MIRROR_KEYS = frozenset(customs_mirror_models.keys)
DBT_KEYS = MONTHLY_KEYS | frozenset(customs_dbt_models.keys) | MIRROR_KEYS


def _keys_rebuilt_with_the_loads(manifest: Mapping[str, Any]) -> frozenset[AssetKey]:
    """The unpartitioned dbt tables whose rows come from the loads (a source upstream): a build of
    new months rebuilds them. Seeds, views and tables made from seeds alone change only with the
    project's files: their code versions say when (defs/jobs.py)."""
    nodes = manifest["nodes"]
    from_loads: dict[str, bool] = {}

    def reads_loads(uid: str) -> bool:
        if uid.startswith("source."):
            return True
        if uid not in from_loads:
            from_loads[uid] = any(reads_loads(u) for u in nodes.get(uid, {}).get("depends_on", {}).get("nodes", []))
        return from_loads[uid]

    return frozenset(
        TRANSLATOR.get_asset_key(node) for uid, node in nodes.items()
        if node["resource_type"] == "model" and node["config"].get("materialized") == "table" and reads_loads(uid)
    ) & frozenset(customs_dbt_models.keys)


REBUILT_WITH_THE_LOADS = _keys_rebuilt_with_the_loads(json.loads(dbt_project.manifest_path.read_text()))
# Rebuilt when their code version changed, they were never built, or their relation is missing.
BUILT_FROM_THE_PROJECT = frozenset(customs_dbt_models.keys) - REBUILT_WITH_THE_LOADS

