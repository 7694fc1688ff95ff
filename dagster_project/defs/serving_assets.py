from pathlib import Path

import duckdb
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset
from dagster_dbt import DbtCliResource

from ..lib import warehouse as wh
from ..lib.headline import headline_markdown, headline_rows
from .dbt_assets import customs_dbt_models, dbt_project
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


def _served_reader(warehouse: WarehouseResource) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(warehouse.settings().warehouse_path), read_only=True)


@asset(
    key=["serving", "parquet_exports"],
    deps=[served_warehouse],
    group_name="serving",
    kinds={"parquet", "duckdb"},
    description="Every mart as data/export/<table>.parquet (large tables partitioned by year), for tools that cannot open DuckDB.",
)
def parquet_exports(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    from ..lib.parquet_export import export_marts

    out_dir = warehouse.settings().outputs_dir / "export"
    con = _served_reader(warehouse)
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
        }
    )


@asset(
    key=["serving", "analyst_report"],
    deps=[served_warehouse],
    group_name="serving",
    kinds={"matplotlib", "html"},
    description=(
        "Charts of the headline series (85051110 world exports in tonnes with MoM/YoY; top partners over time, "
        "2025 export-control months shaded) as PNGs in data/report/ with a one-page report.html."
    ),
)
def analyst_report(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    import base64

    from ..lib.charts import render_report

    out_dir = warehouse.settings().outputs_dir / "report"
    con = _served_reader(warehouse)
    try:
        files = render_report(con, out_dir)
    finally:
        con.close()

    def inline(path):
        return f"![{path.name}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"

    return MaterializeResult(
        metadata={
            "report": MetadataValue.path(str(files.html)),
            "world_chart": MetadataValue.md(inline(files.world_png)),
            "partners_chart": MetadataValue.md(inline(files.partners_png)),
            "headline": MetadataValue.json(files.headline),
        }
    )


@asset(
    key=["serving", "dbt_docs"],
    deps=[served_warehouse],
    group_name="serving",
    kinds={"dbt", "html"},
    pool=DUCKDB_POOL,
    description="`dbt docs generate` as a static site in data/docs/ (opens from disk, no server needed).",
)
def dbt_docs_site(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource) -> MaterializeResult:
    import hashlib

    from ..lib.dbt_docs import build_static_docs

    settings = warehouse.settings()
    out_dir = settings.outputs_dir / "docs"
    # The site depends on the models' SQL, descriptions and columns (the manifest), not on the
    # data: regenerate it (about 5 s of catalog queries) only when the manifest changed.
    manifest_sha = hashlib.sha256(dbt_project.manifest_path.read_bytes()).hexdigest()
    stamp = out_dir / ".manifest.sha256"
    if (out_dir / "index.html").exists() and stamp.exists() and stamp.read_text() == manifest_sha:
        context.log.info("dbt docs are up to date with the manifest")
        return MaterializeResult(metadata={"index": MetadataValue.path(str(out_dir / "index.html")), "regenerated": False})
    invocation = dbt.cli(["docs", "generate", "--static"], manifest=dbt_project.manifest_path, raise_on_error=True).wait()
    index = build_static_docs(Path(invocation.target_path), out_dir)
    stamp.write_text(manifest_sha)
    return MaterializeResult(metadata={"index": MetadataValue.path(str(index)), "regenerated": True})
