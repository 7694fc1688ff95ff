import hashlib
import json

from dagster import (
    DefaultSensorStatus,
    EventLogEntry,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset_sensor,
    sensor,
)

from dagster_project.lib.ingest.landing_files import LandingFile, scan
from dagster_project.lib.warehouse.build_lock import CLI_PID_TAG
from dagster_project.lib.settings import get_settings
from dagster_project.defs.jobs import INGEST_KEYS, RAW_LOADS_KEY, build_warehouse_job, plan_from_ingest, steps_of


def _fingerprint(f: LandingFile) -> str:
    # the stat the listing took: a file whose folder may not be searched has none, and is a
    # rejection the ingest reports, not a reason for the sensor to fail
    if f.stat is None:
        return f"unreadable:{getattr(f.error, 'errno', '')}"
    return f"{f.stat.st_size}:{f.stat.st_mtime_ns}"


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
    # temporary download names (.crdownload, .part ...) are not listed: the finished file is
    listing = scan(settings.landing_dir)
    current = {f.rel: _fingerprint(f) for f in listing.files}
    current.update({rel: f"unreadable folder:{exc.errno}" for rel, exc in listing.unreadable_dirs})
    changed = sorted(rel for rel, fp in current.items() if seen.get(rel) != fp)
    if not changed:
        yield SkipReason(f"no new or changed files in {settings.landing_dir}")
        return
    yield RunRequest(
        # the same files in the same state: the same key, in whichever process the sensor runs
        run_key="landing:" + hashlib.sha256(json.dumps([[rel, current[rel]] for rel in changed]).encode()).hexdigest()[:16],
        run_config={"ops": {"raw_customs_extracts": {"config": {"files": changed}}}},
        # the ingest alone: the monthly models need a run per range of months (build_months_after_ingest)
        asset_selection=INGEST_KEYS,
        asset_check_keys=[],
        tags={"landing_files": ", ".join(changed)[:200]},
    )
    context.update_cursor(json.dumps(current))


def build_requests(event: EventLogEntry, asset_graph) -> list[RunRequest]:
    """The runs `steps_of` makes of the ingest's plan (none when it has nothing to build)."""
    materialization = event.asset_materialization
    plan = plan_from_ingest(materialization.metadata) if materialization else None
    if plan is None or not (plan.ranges or plan.project_keys):
        return []
    return [
        RunRequest(
            run_key=f"after:{event.run_id}:{i}",
            asset_selection=sorted(step.assets, key=lambda k: k.path),
            asset_check_keys=sorted(step.checks, key=lambda k: (k.asset_key.path, k.name)),
            tags={**step.tags, "customs/after_ingest_run": event.run_id},
        )
        for i, step in enumerate(steps_of(plan, asset_graph))
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
    ingest = context.instance.get_run_by_id(asset_event.run_id)
    if ingest is not None and CLI_PID_TAG in ingest.tags:
        # `make run` starts the runs after its own ingest itself: requesting them again would
        # rebuild the same months once more
        yield SkipReason(f"ingest run {asset_event.run_id} is a make run's, which builds its months itself")
        return
    requests = build_requests(asset_event, context.repository_def.asset_graph)
    if not requests:
        yield SkipReason(f"ingest run {asset_event.run_id} left no month to build")
        return
    yield from requests
