from dagster import DefaultScheduleStatus, ScheduleDefinition

from .jobs import build_warehouse_job

# GACC publishes a month's detailed statistics around the 20th of the following month.
monthly_after_gacc_release = ScheduleDefinition(
    name="monthly_after_gacc_release",
    job=build_warehouse_job,
    cron_schedule="0 6 21 * *",
    execution_timezone="Asia/Shanghai",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Rebuild on the 21st, after GACC's monthly release (drop the new downloads into the landing directory first).",
)
