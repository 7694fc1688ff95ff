import duckdb
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from ..lib import warehouse as wh
from ..lib.headline import headline_markdown, headline_rows
from .dbt_assets import customs_dbt_models
from .pools import DUCKDB_POOL
from .resources import WarehouseResource

MART_KEYS = sorted((k for k in customs_dbt_models.keys if k.path[0] == "marts"), key=lambda k: k.path)


@asset(
    key=["serving", "warehouse"],
    deps=MART_KEYS,
    group_name="serving",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    description=(
        "The file BI tools read ($WAREHOUSE_PATH). Built in a working copy and put in place atomically "
        "only when the build and its error-severity checks pass, so readers never see half a build."
    ),
)
def served_warehouse(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    settings = warehouse.settings()
    path = wh.publish(settings)
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name || '.' || table_name, estimated_size FROM duckdb_tables() "
            "WHERE schema_name = 'marts' ORDER BY 1"
        ).fetchall()
        headline = headline_markdown(headline_rows(con))
    finally:
        con.close()
    context.log.info(f"published {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "size_mb": round(path.stat().st_size / 1e6, 2),
            "tables": MetadataValue.md("\n".join(f"- `{t}`: {n:,} rows" for t, n in tables)),
            "headline_85051110": MetadataValue.md(headline),
        }
    )
