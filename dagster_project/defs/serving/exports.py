"""serving/parquet_exports: the marts as Parquet files, for tools that cannot open DuckDB."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from dagster_project.defs.resources import WarehouseResource
from dagster_project.defs.serving.warehouse import served_warehouse


@asset(
    key=["serving", "parquet_exports"],
    deps=[served_warehouse],
    group_name="serving",
    kinds={"parquet", "duckdb"},
    description="Every mart as data/export/<table>.parquet (large tables partitioned by year), for tools that cannot open DuckDB. Tables and years whose rows did not change are kept as they are.",
)
def parquet_exports(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    from dagster_project.lib.serving.parquet_export import export_marts

    out_dir = warehouse.settings().outputs_dir / "export"
    con = warehouse.served_reader()
    try:
        exported = export_marts(con, out_dir)
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
            # unchanged tables and years are kept: after an increment, only the rebuilt years are written
            "files_written": sum(i.files - i.reused for i in exported.values()),
            "files_kept_unchanged": sum(i.reused for i in exported.values()),
        }
    )


