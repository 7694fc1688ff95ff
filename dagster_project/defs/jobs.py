from dagster import AssetSelection, define_asset_job

# Everything, in dependency order: ingest -> dbt build (with tests) -> quality gate -> publish.
build_warehouse_job = define_asset_job(
    "build_warehouse",
    selection=AssetSelection.all(),
    description="Load new extracts, build every dbt model, run the quality checks and publish the served file.",
)
