from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, schedule

from dagster_project.defs.jobs import INGEST_KEYS, build_warehouse_job


# GACC publishes a month's detailed statistics around the 20th of the following month.
@schedule(
    name="monthly_after_gacc_release",
    job=build_warehouse_job,
    cron_schedule="0 6 21 * *",
    execution_timezone="Asia/Shanghai",
    default_status=DefaultScheduleStatus.STOPPED,
    description=(
        "Ingest on the 21st, after GACC's monthly release (drop the new downloads into the landing directory first); "
        "build_months_after_ingest then builds the months loaded."
    ),
)
def monthly_after_gacc_release(context: ScheduleEvaluationContext):
    # The ingest alone: the monthly models are partitioned, the months are known after it.
    return RunRequest(asset_selection=INGEST_KEYS, asset_check_keys=[])
