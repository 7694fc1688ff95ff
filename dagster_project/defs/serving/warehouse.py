"""serving/warehouse: publish the working copy as the file BI tools read."""

import logging
import stat

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset, get_dagster_logger

from dagster_project.defs.resources import DUCKDB_POOL, WarehouseResource
from dagster_project.defs.transform.dbt_assets import DBT_KEYS
from dagster_project.lib.serving.headline import headline_markdown, headline_rows
from dagster_project.lib.warehouse import working_copy as wh
from dagster_project.lib.warehouse.database import open_db
from dagster_project.lib.warehouse.notices import log as warehouse_notices

MART_KEYS = sorted((k for k in DBT_KEYS if k.path[0] == "marts"), key=lambda k: k.path)

RUN_LOG_HANDLER = "customs-warehouse-notices-to-run-log"


class _ToRunLog(logging.Handler):
    """What lib/warehouse says about the files (a damaged working copy rebuilt, a WAL set aside, a
    copy redone) goes to the log of the run whose step it happened in: Dagster captures its own
    logger, not a library's."""

    def emit(self, record: logging.LogRecord) -> None:
        get_dagster_logger().log(record.levelno, record.getMessage())


def forward_warehouse_notices() -> None:
    """Once per process (a code reload in `dagster dev` imports this module again)."""
    if not any(h.get_name() == RUN_LOG_HANDLER for h in warehouse_notices.handlers):
        handler = _ToRunLog()
        handler.set_name(RUN_LOG_HANDLER)
        warehouse_notices.addHandler(handler)


forward_warehouse_notices()


@asset(
    key=["serving", "warehouse"],
    deps=MART_KEYS,
    group_name="serving",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    description=(
        "The file BI tools read ($WAREHOUSE_PATH). Built in a working copy and renamed into place atomically "
        "only when the build and its error-severity checks pass, so readers never see half a build; the next "
        "build's working copy is then copied from it in the background. Read-only on disk (0444): open it read-only."
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
    mode = stat.S_IMODE(path.stat().st_mode)
    context.log.info(f"published {path} ({path.stat().st_size / 1e6:.1f} MB, mode {mode:o}: read-only on disk); the "
                     "next build's working copy is being copied from it in the background")
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "mode": f"{mode:o}",
            "size_mb": round(path.stat().st_size / 1e6, 2),
            "tables": MetadataValue.md("\n".join(f"- `{t}`: {n:,} rows" for t, n in tables)),
            "headline_85051110": MetadataValue.md(headline),
        }
    )


