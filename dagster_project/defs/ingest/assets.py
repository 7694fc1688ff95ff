from dagster import AssetExecutionContext, AssetSpec, Config, MaterializeResult, MetadataValue, multi_asset

from dagster_project.lib.ingest.landing import ingest_landing
from dagster_project.lib.text_tables import markdown_table
from dagster_project.defs.jobs import PLAN_METADATA, plan_build
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
        # What the runs after this one build: the months loaded since Dagster last built them,
        # as partition ranges (the CLI and build_months_after_ingest start those runs).
        plan = plan_build(context.instance, con)

    for rejection in report.rejected:
        context.log.error(f"REJECTED {rejection.file_path}: {rejection.reason}")
    # not rejections (the run succeeds): files still being written, read by a later run
    for deferral in report.deferred:
        context.log.warning(f"DEFERRED {deferral.file_path}: {deferral.reason}")
    if report.temporary:
        context.log.info(
            f"skipped {len(report.temporary)} download(s) still being written under a temporary name "
            f"(.crdownload, .part, ...; see docs/file_formats.md): {', '.join(report.temporary[:20])}"
            + (f" and {len(report.temporary) - 20} more" if len(report.temporary) > 20 else "")
        )
    for loaded in report.loaded:
        for warning in loaded.warnings:
            context.log.warning(f"{loaded.file_path}: {warning}")
    context.log.info(
        f"loaded {len(report.loaded)} file(s) ({report.batched} many per statement), {report.rows_loaded} row(s); "
        f"{len(report.skipped)} already loaded; {len(report.rejected)} rejected; "
        f"{len(report.deferred)} deferred to the next run; {len(report.temporary)} temporary download(s) skipped; "
        f"{report.hashed} file(s) hashed (the others unchanged since an earlier build); "
        f"{report.settle_wait_seconds:.1f} s waiting for just-modified files to settle"
    )
    if report.mirror_loaded:
        context.log.info(
            f"loaded {len(report.mirror_loaded)} UN Comtrade file(s) (mirror/comtrade/), "
            f"{sum(r.row_count for r in report.mirror_loaded)} row(s) of partner-reported imports from China kept"
        )
    rejected_md = markdown_table(["file", "reason"], [(r.file_path, r.reason) for r in report.rejected])
    yield MaterializeResult(
        asset_key=RAW_ROWS.key,
        metadata={
            "dagster/row_count": totals[0],
            "rows_loaded_this_run": report.rows_loaded,
            "files_loaded_this_run": len(report.loaded),
            "files_loaded_in_batches": report.batched,
            "mirror_files_loaded_this_run": len(report.mirror_loaded),
            "files_already_loaded": len(report.skipped),
            "files_hashed_this_run": report.hashed,
            "files_deferred_to_next_run": len(report.deferred),
            "files_skipped_temporary": len(report.temporary),
            # the files, for what `make run` prints at the end (lib/serving/run_report.py)
            "deferred_files": MetadataValue.json([[d.file_path, d.reason] for d in report.deferred]),
            "temporary_files": MetadataValue.json(list(report.temporary)),
            "deferred": MetadataValue.md(
                markdown_table(["file", "why it waits for the next run"], [(d.file_path, d.reason) for d in report.deferred])
                or "none"
            ),
            "temporary_downloads_skipped": MetadataValue.md(
                markdown_table(["file"], [(rel,) for rel in report.temporary]) or "none"
            ),
            "settle_wait_seconds": round(report.settle_wait_seconds, 2),
            "landing_dir": str(settings.landing_dir),
        },
    )
    context.log.info(f"months to build next: {plan.label()}")
    yield MaterializeResult(
        asset_key=RAW_LOADS.key,
        metadata={
            "dagster/row_count": totals[1],
            PLAN_METADATA: MetadataValue.json(plan.to_metadata()),
            "months_to_build": plan.label(),
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
