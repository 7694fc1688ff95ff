"""serving/parquet_exports: the marts as Parquet files, for tools that cannot open DuckDB.

What to rewrite is read from Dagster's record: the months the monthly dbt assets materialised,
and the marts materialised, since this asset was last materialised (runs go one at a time,
dagster.yaml, so nothing is built between that record and the export it describes).
"""

import datetime as dt
from typing import Mapping

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, DagsterInstance, MaterializeResult, MetadataValue, asset

from dagster_project.defs.partitions import code_versions, last_materialized_at, months_materialized_since
from dagster_project.defs.resources import WarehouseResource
from dagster_project.defs.transform.dbt_assets import MONTHLY_KEYS, customs_dbt_models, customs_mirror_models, customs_monthly_models
from dagster_project.defs.serving.warehouse import MART_KEYS, served_warehouse
from dagster_project.lib.months import contiguous_runs, growth_months
from dagster_project.lib.serving.parquet_export import WRITER_VERSION, Years

EXPORTS_KEY = AssetKey(["serving", "parquet_exports"])

# A run records the months of its partition range; these tables also rewrite the growth
# metrics of the months after them (through December of the next year, lib/months.growth_months).
GROWTH_TABLES = {"export_growth_monthly", "export_growth_rare_earths"}

# Each BI view (marts.v_*) and the assets it reads (its dbt refs): a view's rows change where
# theirs do. Rewriting every view whenever any mart changed whole (dim_month, the mirror mart:
# every build) rewrote 100M view rows after one new month at the national size (208 s of 251 s).
BI_VIEWS: dict[AssetKey, frozenset[AssetKey]] = {
    key: frozenset(reads)
    for assets_def in (customs_monthly_models, customs_dbt_models, customs_mirror_models)
    for key, reads in assets_def.asset_deps.items()
    if key.path[0] == "marts" and key.path[-1].startswith("v_")
}
VIEW_SOURCES = {view.path[-1]: {k.path[-1] for k in reads if k in MART_KEYS} for view, reads in BI_VIEWS.items()}


class ParquetExportConfig(Config):
    """Tables with more rows than this (and a `month` column) are written as one directory per year."""

    partition_threshold_rows: int = 1_000_000


def changed_since_last_export(instance: DagsterInstance, assets_def: AssetsDefinition) -> Mapping[str, Years] | None:
    """What of each mart changed since the last export (see export_marts); None: everything
    (never exported, or exported by another version of the writer)."""
    changed, never = code_versions(instance, assets_def, [EXPORTS_KEY])
    if changed or never:
        return None
    months = months_materialized_since(instance, MONTHLY_KEYS, EXPORTS_KEY)
    if months is None:
        return None
    since = last_materialized_at(instance, EXPORTS_KEY)
    monthly = {key.path[-1] for key in MONTHLY_KEYS}
    changed: dict[str, Years] = {}
    for key in MART_KEYS:
        if key in BI_VIEWS:
            continue
        built = last_materialized_at(instance, key)
        if built is None or built <= since:
            continue
        table = key.path[-1]
        years = _years(months, growth=table in GROWTH_TABLES)
        # a monthly mart materialised without months recorded (a run without partitions): all of it
        changed[table] = years if table in monthly and years else None
    # a view redefined since (or reading a seed rebuilt since) changed whole; otherwise where the
    # marts it reads did (export_marts, VIEW_SOURCES)
    for view, reads in BI_VIEWS.items():
        if any(_built_since(instance, k, since) for k in {view} | {k for k in reads if k not in MART_KEYS}):
            changed[view.path[-1]] = None
    return changed


def _built_since(instance: DagsterInstance, key: AssetKey, since: float) -> bool:
    built = last_materialized_at(instance, key)
    return built is not None and built > since


def _years(months: list[dt.date], growth: bool) -> set[int]:
    if not growth:
        return {m.year for m in months}
    return {m.year for first, last in contiguous_runs(months) for m in growth_months(first, last)}


@asset(
    key=EXPORTS_KEY,
    deps=[served_warehouse],
    group_name="serving",
    kinds={"parquet", "duckdb"},
    code_version=WRITER_VERSION,
    description=(
        "Every mart as data/export/<table>.parquet (large tables partitioned by year), for tools that cannot "
        "open DuckDB. Rewrites the marts, and of the large ones the years, that were built since the last "
        "export (Dagster's record), and any output that is missing."
    ),
)
def parquet_exports(
    context: AssetExecutionContext, config: ParquetExportConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    from dagster_project.lib.serving.parquet_export import export_marts

    changed = changed_since_last_export(context.instance, context.assets_def)
    if changed is None:
        context.log.info("no earlier export by this writer in Dagster's record: every table written")
    else:
        context.log.info("built since the last export: " + (", ".join(
            f"{table} ({'all' if years is None else ', '.join(map(str, sorted(years)))})"
            for table, years in sorted(changed.items())) or "nothing"))
    out_dir = warehouse.settings().outputs_dir / "export"
    con = warehouse.served_reader()
    try:
        exported = export_marts(con, out_dir, changed, config.partition_threshold_rows, VIEW_SOURCES)
    finally:
        con.close()
    return MaterializeResult(
        metadata={
            "directory": MetadataValue.path(str(out_dir)),
            "tables": MetadataValue.md(
                "\n".join(f"- `{i.path.name}`: {i.rows:,} rows" + (" (partitioned by year)" if i.partitioned else "")
                          for i in exported.values())
            ),
            "dagster/row_count": sum(i.rows for i in exported.values()),
            "files_written": sum(i.files - i.reused for i in exported.values()),
            "files_kept_unchanged": sum(i.reused for i in exported.values()),
        }
    )
