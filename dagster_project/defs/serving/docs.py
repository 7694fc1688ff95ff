"""serving/dbt_docs: the dbt docs site, one page that opens from disk."""

import hashlib
import json
import shutil

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset
from dagster_dbt import DbtCliResource

from dagster_project.defs.resources import WarehouseResource
from dagster_project.defs.serving.warehouse import served_warehouse
from dagster_project.defs.transform.dbt_assets import dbt_project
from dagster_project.lib.files import atomic_path
from dagster_project.lib.serving.dbt_docs_page import offline_page
from dagster_project.lib.warehouse.build_lock import BuildLock

# The served file, opened read-only (the `docs` target of dbt/profiles.yml), not the working copy
# (`dev`): the docs describe what BI tools read. When this step runs, the publish has just renamed
# the working copy over the served file and a background process is copying it back, so there is
# no working copy until that copy is done; waiting for it (wait_for_working_copy: ~20 s at
# the national size) would only document a copy of the same file, later. Opened for writing, the
# served file would refuse dbt while a BI tool has it open; read-only, dbt shares it with BI
# readers and with the background copy.
DOCS_PROFILE_TARGET = "docs"

# What `dbt docs generate --static` leaves in its target folder that data/docs publishes: the page
# with manifest and catalog inlined (it opens from disk; dbt's index.html fetches the JSON, which
# browsers refuse for file:// pages), and the documents themselves for tools that read dbt's artifacts.
# dbt inlines the JSON as it is: a "</script>" in a description would end the page's script early
# (tests/test_dbt_docs_site.py checks that the project has none).
PUBLISHED = {"manifest.json": "manifest.json", "catalog.json": "catalog.json", "static_index.html": "index.html"}


def _project_version() -> str:
    """What the docs show, as a code version: the dbt manifest without the metadata of its parse
    and each node's parse time (they change every time `dagster dev` parses). A build regenerates the
    docs when this differs from their last materialisation's (defs/jobs.py)."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    manifest.pop("metadata", None)
    for section in manifest.values():  # each node's `created_at` is the time of the parse too
        if isinstance(section, dict):
            for node in section.values():
                if isinstance(node, dict):
                    node.pop("created_at", None)
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


@asset(
    key=["serving", "dbt_docs"],
    code_version=_project_version(),
    deps=[served_warehouse],
    group_name="serving",
    kinds={"dbt", "html"},
    description=(
        "The dbt docs site (overview, models, columns, descriptions, tests, lineage, compiled SQL) as one static "
        "page, data/docs/index.html, that opens from disk: `dbt docs generate --static` on the served file."
    ),
)
def dbt_docs_site(context: AssetExecutionContext, warehouse: WarehouseResource, dbt: DbtCliResource) -> MaterializeResult:
    settings = warehouse.settings()
    if not settings.warehouse_path.exists():
        raise FileNotFoundError(f"no served warehouse to document ({settings.warehouse_path}): build and publish first")
    target = settings.dbt_target("docs")
    out_dir = settings.outputs_dir / "docs"
    # One folder per warehouse, overwritten by each invocation (and holding dbt's partial-parse
    # state, so only a warehouse's first docs run parses the whole project): two runs documenting
    # the same warehouse at once take turns rather than write the same files.
    target.parent.mkdir(parents=True, exist_ok=True)
    with BuildLock(target.with_name(target.name + ".lock")):
        invocation = dbt.cli(["docs", "generate", "--static", "--target", DOCS_PROFILE_TARGET], target_path=target).wait()
        manifest = invocation.get_artifact("manifest.json")
        offline_page(target / "static_index.html")
        for name, published in PUBLISHED.items():  # the page last: it is what people open
            with atomic_path(out_dir / published) as tmp:
                shutil.copyfile(target / name, tmp)

    index = out_dir / "index.html"
    models = sum(1 for node in manifest["nodes"].values() if node["resource_type"] == "model")
    context.log.info(f"dbt docs of {settings.warehouse_path} written to {index}")
    return MaterializeResult(
        metadata={
            "index": MetadataValue.path(str(index)),
            "models": models,
            "sources": len(manifest["sources"]),
            "size_mb": round(index.stat().st_size / 1e6, 2),
        }
    )
