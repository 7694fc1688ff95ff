from pathlib import Path

import duckdb
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from dagster_project.lib.warehouse import working_copy as wh
from dagster_project.lib.serving.headline import headline_markdown, headline_rows
from dagster_project.lib.settings import dbt_target_dir
from dagster_project.defs.transform.dbt_assets import customs_dbt_models, dbt_project
from dagster_project.defs.pools import DUCKDB_POOL
from dagster_project.defs.resources import WarehouseResource

MART_KEYS = sorted((k for k in customs_dbt_models.keys if k.path[0] == "marts"), key=lambda k: k.path)


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
    from dagster_project.lib.serving.parquet_export import record_missing_month_fingerprints

    settings = warehouse.settings()
    with wh.connect_working(settings) as con:
        fingerprinted = record_missing_month_fingerprints(con)
    if any(fingerprinted.values()):
        context.log.info("months hashed for the Parquet export's record (a build of every month): "
                         + ", ".join(f"{t} {n}" for t, n in fingerprinted.items()))
    path = wh.publish(settings)
    con = wh.open_db(path, read_only=True)
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


def _served_reader(warehouse: WarehouseResource) -> duckdb.DuckDBPyConnection:
    return wh.open_db(warehouse.settings().warehouse_path, read_only=True)


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
            # unchanged tables and years are kept: after an increment, only the rebuilt years are written
            "files_written": sum(i.files - i.reused for i in exported.values()),
            "files_kept_unchanged": sum(i.reused for i in exported.values()),
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

    from dagster_project.lib.serving.charts import render_report

    out_dir = warehouse.settings().outputs_dir / "report"
    con = _served_reader(warehouse)
    try:
        files = render_report(con, out_dir)
    finally:
        con.close()

    def inline(path):
        return f"![{path.name}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"

    if not files.rendered:
        context.log.info("charts are up to date with their inputs (same rows, same renderer): not drawn again")
    return MaterializeResult(
        metadata={
            "rendered": files.rendered,
            "report": MetadataValue.path(str(files.html)),
            "world_chart": MetadataValue.md(inline(files.world_png)),
            "partners_chart": MetadataValue.md(inline(files.partners_png)),
            "headline": MetadataValue.json(files.headline),
        }
    )


def _this_runs_dbt_manifest(run_id: str) -> Path | None:
    """The manifest this run's `dbt build` wrote, with the SQL of every node it compiled.

    dagster-dbt gives each invocation its own target folder, `<op>-<run id[:7]>-<uuid[:7]>`,
    under $DBT_TARGET_PATH (default dbt/target).
    """
    found = [p for p in dbt_target_dir().glob(f"{customs_dbt_models.op.name}-{run_id[:7]}-*/manifest.json") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


@asset(
    key=["serving", "dbt_docs"],
    deps=[served_warehouse],
    group_name="serving",
    kinds={"dbt", "html"},
    description=(
        "The dbt docs site (models, columns, descriptions, tests, lineage, SQL) as one static page in "
        "data/docs/index.html that opens from disk; the catalog comes from the served file's own DuckDB catalog."
    ),
)
def dbt_docs_site(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    import hashlib
    import json

    from dagster_project.lib.serving.dbt_docs import catalog_fingerprint, catalog_from_duckdb, publish_static_docs, read_json_document

    settings = warehouse.settings()
    out_dir = settings.outputs_dir / "docs"
    index = out_dir / "index.html"
    # What `dbt docs generate` would write, without running it (5-7 s of dbt start-up, parse,
    # compile and catalog queries): the manifest of this run's dbt build (its compiled SQL
    # included) or, when this run built no dbt model, the project's manifest; the catalog read
    # from the served file's DuckDB catalog, as dbt-duckdb reads it.
    run_manifest = _this_runs_dbt_manifest(context.run.run_id)
    manifest_path = run_manifest or dbt_project.manifest_path
    manifest_json, manifest = read_json_document(manifest_path)
    # A build of some models only (a subset materialized in the UI) compiled only those: such a
    # manifest replaces the site only when the site is out of date anyway.
    complete = run_manifest is not None and all(
        node.get("compiled_code") for node in manifest.get("nodes", {}).values() if node.get("resource_type") == "model"
    )
    con = _served_reader(warehouse)
    try:
        catalog = catalog_from_duckdb(con, manifest)
    finally:
        con.close()
    state = {
        "project_manifest_sha256": hashlib.sha256(dbt_project.manifest_path.read_bytes()).hexdigest(),
        "catalog_sha256": catalog_fingerprint(catalog),
    }
    stamp = out_dir / ".site.json"
    metadata = {"index": MetadataValue.path(str(index)), "relations": len(catalog["nodes"]), "sources": len(catalog["sources"])}
    if not complete and index.exists() and stamp.exists() and stamp.read_text() == json.dumps(state):
        # Keep the site (and the compiled SQL of the build that made it): nothing else it shows changed.
        context.log.info("dbt docs are up to date with the manifest and the warehouse's catalog")
        return MaterializeResult(metadata={**metadata, "regenerated": False})
    publish_static_docs(manifest_json, json.dumps(catalog), out_dir)
    stamp.write_text(json.dumps(state))
    (out_dir / ".manifest.sha256").unlink(missing_ok=True)  # the stamp of earlier versions
    source = (
        "this run's dbt build" if complete
        else "this run's dbt build of some models (compiled SQL of those only)" if run_manifest
        else "the project manifest (no dbt build in this run: no compiled SQL)"
    )
    context.log.info(f"dbt docs written to {index} from {source}")
    return MaterializeResult(metadata={**metadata, "regenerated": True, "manifest": str(manifest_path)})
