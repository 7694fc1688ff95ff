"""The build_warehouse job, and the runs an automatic build makes of it.

The monthly dbt models are partitioned by month (customs_month), and which months to rebuild
is known only once the ingest has read the new files. So an automatic build (`make run`, the
landing sensor, the monthly schedule) is an ingest run, then one run per contiguous range of
the months it left to build: dbt, its tests, and (in the last run) the quality gate and the
serving steps. Dagster's record of the month partitions says which months are built
(defs/partitions.py); code versions say which dbt models changed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
from dagster import AssetKey, AssetSelection, DagsterInstance, define_asset_job

from dagster_project.defs.partitions import code_versions, last_materialized_at, months_built_at, range_tags
from dagster_project.defs.serving.docs import dbt_docs_site
from dagster_project.defs.transform.dbt_assets import (
    BUILT_FROM_THE_PROJECT,
    DBT_KEYS,
    MIRROR_KEYS,
    MONTHLY_KEYS,
    REBUILT_WITH_THE_LOADS,
    customs_dbt_models,
    customs_mirror_models,
    customs_monthly_models,
)
from dagster_project.lib.months import contiguous_runs, key_month, month_key, month_label, months_between
from dagster_project.lib.transform.months_to_build import latest_load_by_month, missing_relations, months_to_build

build_warehouse_job = define_asset_job(
    "build_warehouse",
    selection=AssetSelection.all(),
    description=(
        "Load new extracts, build the dbt models, run the quality checks and publish the served file. "
        "The monthly models are partitioned by month: launch the ingest alone (raw assets), then a month "
        "or a range of months; `make run` and the sensors do both."
    ),
)

INGEST_KEYS = [AssetKey(["raw", "customs_rows"]), AssetKey(["raw", "customs_loads"]), AssetKey(["audit", "rejected_files"])]
RAW_LOADS_KEY = AssetKey(["raw", "customs_loads"])
PLAN_METADATA = "build_plan"  # on raw/customs_loads: what the runs after this ingest build


@dataclass(frozen=True)
class BuildPlan:
    """What the runs after an ingest build: ranges of months, and the assets made from the project's
    files alone that must be rebuilt although no load changed them (dbt models and the docs: new
    code version, never built, relation missing)."""

    ranges: tuple[tuple[dt.date, dt.date], ...] = ()
    project_keys: frozenset[AssetKey] = frozenset()
    every_month_because: str | None = None

    def label(self) -> str:
        months = month_label(m for a, b in self.ranges for m in months_between(a, b))
        return months + (f" (every month: {self.every_month_because})" if self.every_month_because and self.ranges else "")

    def to_metadata(self) -> dict:
        return {
            "ranges": [[month_key(a), month_key(b)] for a, b in self.ranges],
            "project_models": sorted(k.to_user_string() for k in self.project_keys),
            "every_month_because": self.every_month_because,
        }

    @classmethod
    def from_metadata(cls, value: dict) -> BuildPlan:
        return cls(
            tuple((key_month(a), key_month(b)) for a, b in value.get("ranges", [])),
            frozenset(AssetKey.from_user_string(k) for k in value.get("project_models", [])),
            value.get("every_month_because"),
        )


def _relation(key: AssetKey) -> tuple[str, str]:
    return (key.path[0], key.path[-1])


def _upstream_of_monthly() -> set[AssetKey]:
    """The unpartitioned dbt models the monthly ones read (dims, staging, seeds), at any depth."""
    deps = {**customs_dbt_models.asset_deps, **customs_monthly_models.asset_deps}
    seen: set[AssetKey] = set()
    todo = [d for k in MONTHLY_KEYS for d in deps[k]]
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo.extend(deps.get(key, ()))
    return seen & BUILT_FROM_THE_PROJECT


UPSTREAM_OF_MONTHLY = _upstream_of_monthly()


def plan_build(instance: DagsterInstance, con: duckdb.DuckDBPyConnection) -> BuildPlan:
    """The months (and project models) the next runs must build, from Dagster's record and the loads."""
    latest = latest_load_by_month(con)
    built = months_built_at(instance, MONTHLY_KEYS)
    stale, never = code_versions(instance, customs_dbt_models, BUILT_FROM_THE_PROJECT)
    # a monthly model's SQL, or that of a model it reads (a dim, a seed), changed since it was built
    changed, _ = code_versions(instance, customs_monthly_models, MONTHLY_KEYS)
    changed |= stale & UPSTREAM_OF_MONTHLY
    missing = missing_relations(con, [_relation(k) for k in MONTHLY_KEYS])
    if not built:
        because = "first build"
    elif changed:
        because = f"the SQL of {', '.join(sorted(k.to_user_string() for k in changed))} changed"
    elif missing:
        because = f"{', '.join(f'{s}.{t}' for s, t in sorted(missing))} not built yet"
    else:
        because = None
    # Every month is one range, first to last, whose dbt run creates the tables anew.
    months = sorted(latest) if because else months_to_build(latest, built)
    ranges = ((months[0], months[-1]),) if because and months else tuple(contiguous_runs(months))

    absent = set(missing_relations(con, [_relation(k) for k in BUILT_FROM_THE_PROJECT]))
    absent_keys = {k for k in BUILT_FROM_THE_PROJECT if _relation(k) in absent}
    # the docs show the project: regenerated when the dbt manifest changed (their code version)
    docs_stale, docs_never = code_versions(instance, dbt_docs_site, dbt_docs_site.keys)
    # Comtrade files loaded since the mirror was built (or its SQL changed), and no month to build:
    # named here, as a range's last run builds them anyway
    mirror = set() if ranges else mirror_to_rebuild(instance, con)
    return BuildPlan(ranges, frozenset(stale | never | absent_keys | docs_stale | docs_never | mirror),
                     because if months else None)


def mirror_to_rebuild(instance: DagsterInstance, con: duckdb.DuckDBPyConnection) -> set[AssetKey]:
    """Every mirror model, when one of them is older than the latest Comtrade load, was never built,
    has new SQL or is missing from the warehouse; else none."""
    latest = con.execute("SELECT epoch(max(loaded_at)) FROM raw.comtrade_loads").fetchone()[0]  # UTC
    stale, never = code_versions(instance, customs_mirror_models, MIRROR_KEYS)
    if stale or never or missing_relations(con, [_relation(k) for k in MIRROR_KEYS]):
        return set(MIRROR_KEYS)
    if latest is not None and any((last_materialized_at(instance, k) or 0) < latest for k in MIRROR_KEYS):
        return set(MIRROR_KEYS)
    return set()

@dataclass(frozen=True)
class Step:
    """What one run of an automatic build selects."""

    assets: frozenset
    checks: frozenset
    tags: dict


def steps_of(plan: BuildPlan, asset_graph) -> list[Step]:
    """The runs after the ingest. Each range's run builds its months; the first also the project
    models the plan names; the last also the tables rebuilt with the loads, the quality gate and
    the serving steps. Without months, one run of the project models, the gate and serving."""
    from dagster_project.defs.quality.checks import mirror_gate, quality_gate

    gate = set(quality_gate.check_keys) | set(mirror_gate.check_keys)
    after_dbt = {k for k in asset_graph.materializable_asset_keys if k not in DBT_KEYS and k not in INGEST_KEYS}
    after_dbt -= set(dbt_docs_site.keys) - plan.project_keys  # the docs only when the project changed

    def checks_of(assets) -> frozenset:
        return frozenset(k for k in asset_graph.asset_check_keys if k.asset_key in assets and k not in gate)

    runs = list(plan.ranges) or [None]
    steps = []
    for i, key_range in enumerate(runs):
        assets = set(plan.project_keys & DBT_KEYS) if i == 0 else set()
        if key_range is not None:
            assets |= MONTHLY_KEYS
        checks = checks_of(assets)
        if i == len(runs) - 1:
            if key_range is not None:
                assets |= REBUILT_WITH_THE_LOADS | MIRROR_KEYS
            assets |= after_dbt
            checks = checks_of(assets) | gate
        tags = range_tags(*key_range) if key_range is not None else {}
        steps.append(Step(frozenset(assets), frozenset(checks), tags))
    return steps


@dataclass
class BuildRuns:
    """The runs of one automatic build; reads like the result of a single run (the last one)."""

    runs: list = field(default_factory=list)
    plan: BuildPlan = field(default_factory=BuildPlan)

    @property
    def success(self) -> bool:
        return bool(self.runs) and all(r.success for r in self.runs)

    @property
    def run_id(self) -> str:
        return self.runs[-1].run_id

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    @property
    def all_events(self) -> list:
        return [e for r in self.runs for e in r.all_events]

    def get_asset_materialization_events(self) -> list:
        return [e for r in self.runs for e in r.get_asset_materialization_events()]


def plan_from_ingest(materialization_metadata) -> BuildPlan:
    value = materialization_metadata.get(PLAN_METADATA)
    return BuildPlan.from_metadata(getattr(value, "value", value) or {})


def build_in_process(job, asset_graph, instance, files: list[str] | None = None, tags: dict | None = None) -> BuildRuns:
    """Ingest, then the runs `steps_of` makes of its plan; stops at the first run that fails."""
    tags = dict(tags or {})
    run_config = {"ops": {"raw_customs_extracts": {"config": {"files": files}}}} if files else None
    ingest = job.get_subset(asset_selection=set(INGEST_KEYS), asset_check_selection=set()).execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False, tags=tags
    )
    out = BuildRuns([ingest])
    if not ingest.success:
        return out
    [loads] = [e for e in ingest.get_asset_materialization_events() if e.asset_key == RAW_LOADS_KEY]
    out.plan = plan_from_ingest(loads.materialization.metadata)
    for step in steps_of(out.plan, asset_graph):
        run = job.get_subset(asset_selection=set(step.assets), asset_check_selection=set(step.checks)).execute_in_process(
            instance=instance, raise_on_error=False, tags={**tags, **step.tags}
        )
        out.runs.append(run)
        if not run.success:
            break
    return out
