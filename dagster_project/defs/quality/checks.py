import json
import re

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from dagster_project.lib.warehouse import working_copy as wh
from dagster_project.lib.quality.audit import record_check_results
from dagster_project.lib.quality.checks import CHECKS, ERROR, PREPARE, CheckOutcome, QualityCheck, run_checks
from dagster_project.lib.serving.run_report import current_rejections
from dagster_project.lib.text_tables import markdown_table
from dagster_project.defs.resources import DUCKDB_POOL
from dagster_project.defs.resources import WarehouseResource

_RELATION = re.compile(r"\b(staging|intermediate|marts|reference)\.(\w+)")


def _reads(check: QualityCheck) -> list[AssetKey]:
    """The dbt tables a check's SQL reads besides the asset it checks: Dagster runs the check
    after they are built in the same run (a run may build the facts, then the tables made from
    them, in steps of their own)."""
    sql = " ".join([check.population_sql, check.sample_sql or "", *(s for t in check.requires for s in PREPARE[t])])
    own = AssetKey.from_user_string(check.asset)
    return sorted({AssetKey([schema, table]) for schema, table in _RELATION.findall(sql)} - {own}, key=lambda k: k.path)


SPECS = [
    AssetCheckSpec(
        name=check.name,
        asset=AssetKey.from_user_string(check.asset),
        description=f"[{check.severity}] {check.description}",
        # error-severity checks hold back everything downstream (the publish step)
        blocking=check.severity == ERROR,
        additional_deps=_reads(check),
        metadata={"severity": check.severity, "expectations": MetadataValue.json([e.__dict__ for e in check.expectations])},
    )
    for check in CHECKS
]


def _sample_markdown(outcome: CheckOutcome) -> str:
    if not outcome.failing_sample:
        return "none"
    headers = list(outcome.failing_sample[0].keys())
    return markdown_table(headers, [[row[h] for h in headers] for row in outcome.failing_sample])


@multi_asset_check(specs=SPECS, pool=DUCKDB_POOL, can_subset=True, name="quality_gate")
def quality_gate(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Great Expectations suites over DuckDB aggregates; results go to the UI, audit.check_results and data docs.

    After an incremental dbt build in the same run, the checks look at the months rebuilt since
    the last gate that passed (and the months around them each check needs); otherwise, and
    after a build of every month, at the whole warehouse. Each result says which months.
    """
    settings = warehouse.settings()
    selected = {key.name for key in context.selected_asset_check_keys}
    checks = tuple(c for c in CHECKS if c.name in selected)
    docs_dir = settings.outputs_dir / "quality"
    with warehouse.connect() as con:
        scope = None  # every month, until the gate reads Dagster's record of the months built
        context.log.info("quality gate over " + ("every month" if scope is None else f"the months rebuilt: {scope.label()}"))
        rejected = current_rejections(con, settings)
        outcomes = run_checks(con, docs_dir=docs_dir, checks=checks, rejected_files=rejected, scope=scope)
        record_check_results(
            con,
            context.run.run_id,
            [
                (o.check.name, o.check.asset, o.severity, o.passed, f"{o.observed}; months checked: {o.months_checked}", o.check.description,
                 json.dumps(o.failing_sample[:10], default=str) if o.failing_sample else None)
                for o in outcomes
            ],
        )
        blocked = [o for o in outcomes if not o.passed and o.severity == ERROR]
    if blocked:
        # The marts BI reads stay as they were; only the audit tables travel to the served file.
        wh.publish_audit_only(settings)
        context.log.error("quality gate failed: " + ", ".join(o.check.name for o in blocked) + " (served marts kept)")
    for o in outcomes:
        if not o.passed:
            log = context.log.error if o.severity == ERROR else context.log.warning
            log(f"check {o.check.name} [{o.severity}] failed: {o.observed}")
        yield AssetCheckResult(
            asset_key=AssetKey.from_user_string(o.check.asset),
            check_name=o.check.name,
            passed=o.passed,
            severity=AssetCheckSeverity.ERROR if o.severity == ERROR else AssetCheckSeverity.WARN,
            description=o.check.description,
            metadata={
                "severity": o.severity,
                "observed": o.observed,
                "expectations": MetadataValue.json(o.expectation_results),
                "population_rows": o.population_rows,
                "failing_sample": MetadataValue.md(_sample_markdown(o)),
                "data_docs": MetadataValue.url((docs_dir / "index.html").as_uri()),
                "seconds": round(o.seconds, 3),
                "months_checked": o.months_checked,
            },
        )
