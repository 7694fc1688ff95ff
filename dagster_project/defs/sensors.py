import json

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    EventLogEntry,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset_sensor,
    sensor,
)

from dagster_project.lib.ingest.landing import discover
from dagster_project.lib.settings import get_settings
from dagster_project.defs.jobs import INGEST_KEYS, RAW_LOADS_KEY, build_warehouse_job, plan, ranges_from_metadata
from dagster_project.defs.partitions import RANGE_END_TAG, RANGE_START_TAG


def _fingerprint(path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


@sensor(
    job=build_warehouse_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Starts an ingest of just the new or changed files in $CUSTOMS_LANDING_DIR; "
        "build_months_after_ingest then builds the months it touched."
    ),
)
def landing_files_sensor(context: SensorEvaluationContext):
    settings = get_settings()
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    current = {f.rel: _fingerprint(f.path) for f in discover(settings.landing_dir)}
    changed = sorted(rel for rel, fp in current.items() if seen.get(rel) != fp)
    if not changed:
        yield SkipReason(f"no new or changed files in {settings.landing_dir}")
        return
    yield RunRequest(
        run_key=f"landing:{hash(tuple((rel, current[rel]) for rel in changed)) & 0xFFFFFFFF:08x}",
        run_config={"ops": {"raw_customs_extracts": {"config": {"files": changed}}}},
        # the ingest alone: the monthly models need a run per range of months (build_months_after_ingest)
        asset_selection=INGEST_KEYS,
        asset_check_keys=[],
        tags={"landing_files": ", ".join(changed)[:200]},
    )
    context.update_cursor(json.dumps(current))


def build_requests(event: EventLogEntry, asset_graph) -> list[RunRequest]:
    """The runs `plan` makes of the ranges of months the ingest left to build (none without months:
    the unpartitioned rest is as it was)."""
    materialization = event.asset_materialization
    ranges = ranges_from_metadata(materialization.metadata) if materialization else []
    if not ranges:
        return []
    return [
        RunRequest(
            run_key=f"months:{event.run_id}:{step.tags[RANGE_START_TAG]}..{step.tags[RANGE_END_TAG]}",
            asset_selection=sorted(step.assets, key=lambda k: k.path),
            asset_check_keys=sorted(step.checks, key=lambda k: (k.asset_key.path, k.name)),
            tags={**step.tags, "customs/after_ingest_run": event.run_id},
        )
        for step in plan(asset_graph, ranges)
    ]


@asset_sensor(
    asset_key=RAW_LOADS_KEY,
    job=build_warehouse_job,
    minimum_interval_seconds=30,
    # on: it only acts after an ingest (the landing sensor, the schedule, a run from the UI)
    default_status=DefaultSensorStatus.RUNNING,
    description="After an ingest, builds the months it left to build: one run per range of months (customs_month partitions).",
)
def build_months_after_ingest(context: SensorEvaluationContext, asset_event: EventLogEntry):
    requests = build_requests(asset_event, context.repository_def.asset_graph)
    if not requests:
        yield SkipReason(f"ingest run {asset_event.run_id} left no month to build")
        return
    yield from requests
