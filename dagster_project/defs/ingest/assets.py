from dagster import AssetExecutionContext, AssetSpec, Config, MaterializeResult, MetadataValue, multi_asset

from dagster_project.lib.transform.months_to_build import month_ranges, months_pending
from dagster_project.lib.ingest.landing import ingest_landing
from dagster_project.lib.text_tables import markdown_table
from dagster_project.defs.partitions import MONTHS_TO_BUILD_METADATA, planned_ranges
from dagster_project.defs.resources import DUCKDB_POOL
from dagster_project.defs.resources import WarehouseResource

RAW_ROWS = AssetSpec(
    ["raw", "customs_rows"],
    description="Every data row of every loaded GACC download, numbers parsed, with lineage (file, SHA-256, load id, row number).",
    group_name="raw",
    kinds={"duckdb", "python"},
)
RAW_LOADS = AssetSpec(
    ["raw", "customs_loads"],
    description="One row per loaded file: hash, encoding, header language, currency, period, unit conversions, warnings.",
    group_name="raw",
    kinds={"duckdb", "python"},
)
REJECTED = AssetSpec(
    ["audit", "rejected_files"],
    description="Files that could not be loaded, with a reason naming the row and column at fault. The landing directory is never modified.",
    group_name="raw",
    kinds={"duckdb", "python"},
)


class IngestConfig(Config):
    """Leave `files` empty to load every new or changed file in the landing directory."""

    files: list[str] = []


@multi_asset(specs=[RAW_ROWS, RAW_LOADS, REJECTED], pool=DUCKDB_POOL, can_subset=False)
def raw_customs_extracts(context: AssetExecutionContext, config: IngestConfig, warehouse: WarehouseResource):
    """Load new and changed GACC downloads from $CUSTOMS_LANDING_DIR into the working copy."""
    settings = warehouse.settings()
    with warehouse.connect() as con:
        report = ingest_landing(
            con,
            settings.landing_dir,
            settings.staging_dir,
            run_id=context.run.run_id,
            only=config.files or None,
        )
        totals = con.execute(
            "SELECT (SELECT count(*) FROM raw.customs_rows), (SELECT count(*) FROM raw.customs_loads), "
            "(SELECT count(*) FROM audit.rejected_files)"
        ).fetchone()
        preview = con.execute(
            "SELECT file_path, flow, currency, header_language, strftime(period_start, '%Y-%m') AS period_from, "
            "strftime(period_end, '%Y-%m') AS period_to, row_count, warnings FROM raw.customs_loads ORDER BY load_seq DESC LIMIT 10"
        ).fetchall()
        # The months the dbt build must rebuild next, as the month partition ranges to run (the
        # CLI and build_months_after_ingest start those runs).
        pending, every_month = months_pending(con)
        ranges = planned_ranges(pending, every_month is not None)

    for rejection in report.rejected:
        context.log.error(f"REJECTED {rejection.file_path}: {rejection.reason}")
    for loaded in report.loaded:
        for warning in loaded.warnings:
            context.log.warning(f"{loaded.file_path}: {warning}")
    context.log.info(
        f"loaded {len(report.loaded)} file(s) ({report.batched} many per statement), {report.rows_loaded} row(s); "
        f"{len(report.skipped)} already loaded; {len(report.rejected)} rejected; "
        f"{report.hashed} file(s) hashed (the others unchanged since an earlier build)"
    )
    rejected_md = markdown_table(["file", "reason"], [(r.file_path, r.reason) for r in report.rejected])
    yield MaterializeResult(
        asset_key=RAW_ROWS.key,
        metadata={
            "dagster/row_count": totals[0],
            "rows_loaded_this_run": report.rows_loaded,
            "files_loaded_this_run": len(report.loaded),
            "files_loaded_in_batches": report.batched,
            "files_already_loaded": len(report.skipped),
            "files_hashed_this_run": report.hashed,
            "landing_dir": str(settings.landing_dir),
        },
    )
    context.log.info(f"months to build next: {month_ranges(pending) or 'none'}"
                     + (f" ({every_month}: every month)" if every_month and pending else ""))
    yield MaterializeResult(
        asset_key=RAW_LOADS.key,
        metadata={
            "dagster/row_count": totals[1],
            MONTHS_TO_BUILD_METADATA: MetadataValue.json([[r.start, r.end] for r in ranges]),
            "months_to_build_label": month_ranges(pending) or "none",
            "preview": MetadataValue.md(
                markdown_table(["file", "flow", "currency", "lang", "from", "to", "rows", "warnings"], preview)
            ),
        },
    )
    yield MaterializeResult(
        asset_key=REJECTED.key,
        metadata={
            "dagster/row_count": totals[2],
            "rejected_this_run": len(report.rejected),
            "rejections": MetadataValue.md(rejected_md or "none"),
        },
    )
