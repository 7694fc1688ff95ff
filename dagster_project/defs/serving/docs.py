"""serving/dbt_docs: the dbt docs site, from disk."""

from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from dagster_project.defs.resources import WarehouseResource
from dagster_project.defs.serving.warehouse import served_warehouse
from dagster_project.defs.transform.dbt_assets import customs_dbt_models, dbt_project
from dagster_project.lib.settings import dbt_target_dir


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
    con = warehouse.served_reader()
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
