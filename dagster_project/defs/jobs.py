"""The build_warehouse job, and how an automatic build runs it: ingest, then the months it touched.

The incremental dbt models are partitioned by month (customs_month). Dagster cannot materialise
a partitioned asset in a run without a partition, and which months to rebuild is known only
after the ingest (one download may hold many months, or a cumulative period). So an automatic
build (the CLI, the landing sensor, the monthly schedule) is two steps: a run of the ingest
assets, then, for each contiguous range of the months it left to build, one run of everything
else for that partition range (the first build: one run from the first loaded month to the last).
Without months to build, one run of the assets without partitions (dbt seeds, dims, views,
cumulative figures; quality gate; publish) keeps `make run` with nothing new as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dagster import AssetKey, AssetSelection, PartitionKeyRange, define_asset_job

from dagster_project.defs.partitions import MONTHS_TO_BUILD_METADATA, _legacy_range_tags as range_tags

# Everything, in dependency order: ingest -> dbt build (with tests) -> quality gate -> publish.
build_warehouse_job = define_asset_job(
    "build_warehouse",
    selection=AssetSelection.all(),
    description=(
        "Load new extracts, build the dbt models, run the quality checks and publish the served file. "
        "The monthly models are partitioned by month: launch the ingest alone (raw assets), then a month "
        "or a range of months; `python -m dagster_project.cli build` and the sensors do both."
    ),
)

INGEST_KEYS = [AssetKey(["raw", "customs_rows"]), AssetKey(["raw", "customs_loads"]), AssetKey(["audit", "rejected_files"])]
RAW_LOADS_KEY = AssetKey(["raw", "customs_loads"])


def ranges_from_metadata(metadata) -> list[PartitionKeyRange]:
    value = metadata.get(MONTHS_TO_BUILD_METADATA)
    pairs = getattr(value, "value", value) or []
    return [PartitionKeyRange(start, end) for start, end in pairs]


def build_selections(asset_graph) -> tuple[list[AssetKey], list[AssetKey]]:
    """(every asset but the ingest, those of them without partitions)."""
    rest = [k for k in asset_graph.materializable_asset_keys if k not in INGEST_KEYS]
    unpartitioned = [k for k in rest if asset_graph.get(k).partitions_def is None]
    return sorted(rest, key=lambda k: k.path), sorted(unpartitioned, key=lambda k: k.path)


@dataclass(frozen=True)
class Step:
    """What one run of an automatic build selects."""

    assets: frozenset
    checks: frozenset
    tags: dict


def plan(asset_graph, ranges: list[PartitionKeyRange]) -> list[Step]:
    """The runs after the ingest. Every range but the last builds the dbt models (and their dbt
    tests) only; the last also runs the quality gate (all of it, the checks on the raw assets
    too, once every month is built: its reconciliations compare raw rows with the facts) and
    publishes. Without months to build: one run without partitions of what has none."""
    from dagster_project.defs.quality.checks import quality_gate
    from dagster_project.defs.transform.dbt_assets import customs_dbt_models

    rest, unpartitioned = build_selections(asset_graph)
    gate = set(quality_gate.check_keys)
    dbt_keys = set(customs_dbt_models.keys)

    def checks_of(assets) -> frozenset:
        return frozenset(k for k in asset_graph.asset_check_keys if k.asset_key in assets and k not in gate) | gate

    if not ranges:
        return [Step(frozenset(unpartitioned), checks_of(set(unpartitioned)), {})]
    steps = []
    for i, key_range in enumerate(ranges):
        if i < len(ranges) - 1:
            assets = frozenset(dbt_keys)
            checks = checks_of(dbt_keys) - gate
        else:
            assets = frozenset(rest)
            checks = checks_of(set(rest))
        steps.append(Step(assets, checks, range_tags(key_range)))
    return steps


@dataclass
class BuildRuns:
    """The runs of one automatic build; reads like the result of a single run (the last one)."""

    runs: list = field(default_factory=list)
    ranges: list[PartitionKeyRange] = field(default_factory=list)

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


def build_in_process(job, asset_graph, instance, files: list[str] | None = None, tags: dict | None = None) -> BuildRuns:
    """Ingest, then the runs `plan` makes of the months it left to build; stops at the first run that fails."""
    tags = dict(tags or {})
    run_config = {"ops": {"raw_customs_extracts": {"config": {"files": files}}}} if files else None
    ingest = job.get_subset(asset_selection=set(INGEST_KEYS), asset_check_selection=set()).execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False, tags=tags
    )
    out = BuildRuns([ingest])
    if not ingest.success:
        return out
    [loads] = [e for e in ingest.get_asset_materialization_events() if e.asset_key == RAW_LOADS_KEY]
    out.ranges = ranges_from_metadata(loads.materialization.metadata)
    for step in plan(asset_graph, out.ranges):
        run = job.get_subset(asset_selection=set(step.assets), asset_check_selection=set(step.checks)).execute_in_process(
            instance=instance, raise_on_error=False, tags={**tags, **step.tags}
        )
        out.runs.append(run)
        if not run.success:
            break
    return out
