"""serving/warehouse: publish the working copy as the file BI tools read."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from dagster_project.defs.resources import DUCKDB_POOL, WarehouseResource
from dagster_project.defs.transform.dbt_assets import DBT_KEYS
from dagster_project.lib.serving.headline import headline_markdown, headline_rows
from dagster_project.lib.warehouse import working_copy as wh
from dagster_project.lib.warehouse.database import open_db

MART_KEYS = sorted((k for k in DBT_KEYS if k.path[0] == "marts"), key=lambda k: k.path)


@asset(
    key=["serving", "warehouse"],
    deps=MART_KEYS,
    group_name="serving",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    description=(
        "The file BI tools read ($WAREHOUSE_PATH). Built in a working copy and renamed into place atomically "
        "only when the build and its error-severity checks pass, so readers never see half a build; the next "
        "build's working copy is then copied from it in the background."
    ),
)
def served_warehouse(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    settings = warehouse.settings()
    path = wh.publish(settings)
    con = open_db(path, read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name || '.' || table_name, estimated_size FROM duckdb_tables() "
            "WHERE schema_name = 'marts' ORDER BY 1"
        ).fetchall()
        headline = headline_markdown(headline_rows(con))
    finally:
        con.close()
    context.log.info(f"published {path} ({path.stat().st_size / 1e6:.1f} MB); the next build's working copy "
                     "is being copied from it in the background")
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "size_mb": round(path.stat().st_size / 1e6, 2),
            "tables": MetadataValue.md("\n".join(f"- `{t}`: {n:,} rows" for t, n in tables)),
            "headline_85051110": MetadataValue.md(headline),
        }
    )


