"""quality_gate: the GX checks of lib/quality as one Dagster multi-asset check, run after the dbt
build and before the publish, over the months Dagster's record says were built since the last publish."""

import datetime as dt
import json
import re

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    Config,
    DagsterInstance,
    MetadataValue,
    multi_asset_check,
)

from dagster_project.defs.partitions import months_materialized_since
from dagster_project.defs.resources import DUCKDB_POOL, WarehouseResource
from dagster_project.defs.transform.dbt_assets import MONTHLY_KEYS
from dagster_project.lib.quality.audit import record_check_results
from dagster_project.lib.quality.check_spec import ERROR, QualityCheck
from dagster_project.lib.quality.checks import CHECKS
from dagster_project.lib.quality.mirror_checks import MIRROR_CHECKS
from dagster_project.lib.quality.gx_suites import check_sql, docs_index, run_checks
from dagster_project.lib.quality.outcome import CheckOutcome
from dagster_project.lib.quality.scope import Scope, scope_of
from dagster_project.lib.serving.run_report import current_rejections
from dagster_project.lib.text_tables import markdown_table
from dagster_project.lib.warehouse import working_copy as wh

# The publish step: it runs only after a gate that passed.
PUBLISH_KEY = AssetKey(["serving", "warehouse"])

_RELATION = re.compile(r"\b(staging|intermediate|marts|reference)\.(\w+)")


def _reads(check: QualityCheck) -> list[AssetKey]:
    """The dbt tables a check's SQL reads besides the asset it checks: Dagster runs the check
    after they are built in the same run (a run may build the facts, then the tables made from
    them, in steps of their own)."""
    sql = check_sql(check) + " " + (check.sample_sql or "")
    own = AssetKey.from_user_string(check.asset)
    return sorted({AssetKey([schema, table]) for schema, table in _RELATION.findall(sql)} - {own}, key=lambda k: k.path)


def _specs(checks: tuple[QualityCheck, ...]) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            name=check.name,
            asset=AssetKey.from_user_string(check.asset),
            description=f"[{check.severity}] {check.description}",
            # error-severity checks hold back everything downstream (the publish step)
            blocking=check.severity == ERROR,
            additional_deps=_reads(check),
            metadata={"severity": check.severity, "expectations": MetadataValue.json([e.__dict__ for e in check.expectations])},
        )
        for check in checks
    ]


# The mirror's checks run in a step of their own: its tables read the monthly facts, which the
# gate's blocking checks hold back, so one step checking both would wait on itself.
MIRROR_CHECK_NAMES = frozenset(c.name for c in MIRROR_CHECKS)
GATE_CHECKS = tuple(c for c in CHECKS if c.name not in MIRROR_CHECK_NAMES)
SPECS = _specs(GATE_CHECKS)


def _sample_markdown(outcome: CheckOutcome) -> str:
    if not outcome.failing_sample:
        return "none"
    headers = list(outcome.failing_sample[0].keys())
    return markdown_table(headers, [[row[h] for h in headers] for row in outcome.failing_sample])


class QualityGateConfig(Config):
    """`every_month`: check the whole warehouse, not only the months built since the last publish
    (e.g. after changing a check, or to re-check from the UI's launchpad)."""

    every_month: bool = False


def months_to_check(instance: DagsterInstance) -> list[dt.date] | None:
    """The months the monthly dbt assets materialised since the last publish (Dagster's record);
    None when nothing was ever published (every month).

    A publish follows only a gate that passed, so the months of a gate that failed are checked
    again by the next gate, with whatever was built since.
    """
    return months_materialized_since(instance, MONTHLY_KEYS, PUBLISH_KEY)


def _gate(name: str, checks_of_step: tuple[QualityCheck, ...], data_docs: bool = True):
    """A multi-asset check over `checks_of_step`: GX suites over DuckDB aggregates; results go to the
    UI, audit.check_results and data docs.

    The checks look at the months built since the last publish (and the months around them each
    check needs), or at the whole warehouse when it was never published, when those months are
    every month it holds, or when `every_month` is set. Each result says which months.
    """

    @multi_asset_check(specs=_specs(checks_of_step), pool=DUCKDB_POOL, can_subset=True, name=name)
    def gate(context: AssetCheckExecutionContext, config: QualityGateConfig, warehouse: WarehouseResource):
        yield from _run_gate(context, config, warehouse, checks_of_step, data_docs)

    return gate


def _run_gate(context: AssetCheckExecutionContext, config: QualityGateConfig, warehouse: WarehouseResource,
              checks_of_step: tuple[QualityCheck, ...], data_docs: bool):
    settings = warehouse.settings()
    selected = {key.name for key in context.selected_asset_check_keys}
    checks = tuple(c for c in checks_of_step if c.name in selected)
    docs_dir = settings.outputs_dir / "quality"
    months = None if config.every_month else months_to_check(context.instance)
    with warehouse.connect() as con:
        scope: Scope | None = None if months is None else scope_of(con, months)
        context.log.info("quality gate over " + (
            "every month" if scope is None else f"the months built since the last publish: {scope.label()}"))
        rejected = current_rejections(con, settings)
        outcomes = run_checks(con, docs_dir=docs_dir if data_docs else None, checks=checks, rejected_files=rejected, scope=scope)
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
                "data_docs": MetadataValue.url(docs_index(docs_dir).as_uri()),
                "seconds": round(o.seconds, 3),
                "months_checked": o.months_checked,
            },
        )


quality_gate = _gate("quality_gate", GATE_CHECKS)
# one data-docs site per directory: the quality gate's (a second build of it would replace its index)
mirror_gate = _gate("mirror_gate", MIRROR_CHECKS, data_docs=False)
