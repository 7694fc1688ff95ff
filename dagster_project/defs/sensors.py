import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from ..lib.ingest import discover
from ..lib.settings import get_settings
from .jobs import build_warehouse_job


def _fingerprint(path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


@sensor(
    job=build_warehouse_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Starts a build for just the new or changed files in $CUSTOMS_LANDING_DIR.",
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
        tags={"landing_files": ", ".join(changed)[:200]},
    )
    context.update_cursor(json.dumps(current))
