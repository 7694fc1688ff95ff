"""Month partitions (customs_month), and what Dagster's record of them says is built.

A partition is a statistics month, 1990-01 up to the month before the current one. Dagster's
materialisations of the month partitions are the one record of which months are built and
when: the next build's months, the quality gate's months, the Parquet years to rewrite and
whether the charts are redrawn are all read from it (with the public `DagsterInstance` API).
The data says which months each load holds (raw.customs_load_months).
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable, Mapping

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    DagsterInstance,
    MonthlyPartitionsDefinition,
    PartitionKeyRange,
)

from dagster_project.lib.months import key_month, month_key, months_between

CUSTOMS_MONTH = MonthlyPartitionsDefinition(start_date="1990-01", fmt="%Y-%m", end_offset=0)

# The tags a single-run backfill of a range of partitions carries (and the CLI's runs).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"

RECORDS_PAGE = 1000


def range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """The tags that make a run build the months `first`..`last`."""
    return {RANGE_START_TAG: month_key(first), RANGE_END_TAG: month_key(last)}


def key_range(first: dt.date, last: dt.date) -> PartitionKeyRange:
    return PartitionKeyRange(month_key(first), month_key(last))


def run_months(tags: Mapping[str, str]) -> list[dt.date] | None:
    """The months of a run's partition range (from its tags); None for a run without partitions."""
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return months_between(key_month(tags[RANGE_START_TAG]), key_month(tags[RANGE_END_TAG]))
    if PARTITION_TAG in tags:
        return [key_month(tags[PARTITION_TAG])]
    return None


def last_materialized_at(instance: DagsterInstance, asset_key: AssetKey) -> float | None:
    """When `asset_key` was last materialised (any partition), as a Unix time; None if never."""
    event = instance.get_latest_materialization_event(asset_key)
    return event.timestamp if event else None


def materialized_months(
    instance: DagsterInstance, asset_key: AssetKey, after: float | None = None
) -> dict[dt.date, float]:
    """Each month partition of `asset_key` materialised after `after` (None: ever), with the
    time of its latest materialisation."""
    out: dict[dt.date, float] = {}
    cursor = None
    while True:
        result = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key, after_timestamp=after), limit=RECORDS_PAGE, cursor=cursor
        )
        for record in result.records:  # newest first: the first seen of a month is its latest
            if record.partition_key:
                out.setdefault(key_month(record.partition_key), record.timestamp)
        if not result.has_more:
            return out
        cursor = result.cursor


def months_built_at(instance: DagsterInstance, asset_keys: Iterable[AssetKey]) -> dict[dt.date, float]:
    """The months built by every one of `asset_keys`, each with the time the earliest of them
    was last built: a month is as new as its least recently built table."""
    built: dict[dt.date, float] | None = None
    for key in asset_keys:
        months = materialized_months(instance, key)
        built = months if built is None else {m: min(t, months[m]) for m, t in built.items() if m in months}
    return built or {}


def months_materialized_since(
    instance: DagsterInstance, asset_keys: Iterable[AssetKey], since_asset: AssetKey
) -> list[dt.date] | None:
    """The months any of `asset_keys` materialised since `since_asset` was last materialised:
    what changed since a step that reads them last ran. None when that step never ran (it has
    everything to do)."""
    since = last_materialized_at(instance, since_asset)
    if since is None:
        return None
    months: set[dt.date] = set()
    for key in asset_keys:
        months.update(materialized_months(instance, key, after=since))
    return sorted(months)



def code_versions(
    instance: DagsterInstance, assets_def: AssetsDefinition, keys: Iterable[AssetKey]
) -> tuple[set[AssetKey], set[AssetKey]]:
    """(the keys whose code version changed since their last materialisation, the keys never
    materialised): a dbt model's code version is its SQL's checksum (dagster-dbt's default)."""
    keys = list(keys)
    current = assets_def.code_versions_by_key
    last = instance.get_latest_materialization_code_versions(keys)
    return {k for k in keys if last.get(k) not in (None, current.get(k))}, {k for k in keys if last.get(k) is None}
