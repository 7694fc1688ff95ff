"""Month partitions of the incremental dbt models (customs_month), and the runs that build them.

A partition is a statistics month: the months the ingest accepts (lib/ingest.py: 1990-01 up to
the last month that is over), so the last partition is the month before the current one.
"""

from __future__ import annotations

import datetime as dt

from dagster import MonthlyPartitionsDefinition, PartitionKeyRange

CUSTOMS_MONTH = MonthlyPartitionsDefinition(start_date="1990-01", fmt="%Y-%m", end_offset=0)
CUSTOMS_MONTH_NAME = "customs_month"  # the name the partitions show under (tags, docs)

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def month_key(month: dt.date) -> str:
    return month.strftime("%Y-%m")


def key_month(key: str) -> dt.date:
    return dt.datetime.strptime(key, "%Y-%m").date()


def months_of_range(start: str, end: str) -> list[dt.date]:
    """Every month from `start` to `end` (partition keys, inclusive)."""
    first, last = key_month(start), key_month(end)
    out, index = [], first.year * 12 + first.month - 1
    while True:
        month = dt.date(index // 12, index % 12 + 1, 1)
        if month > last:
            return out
        out.append(month)
        index += 1


def contiguous_ranges(months: list[dt.date]) -> list[PartitionKeyRange]:
    """['2025-03', '2025-04', '2025-06'] -> [2025-03..2025-04, 2025-06..2025-06]."""
    ranges: list[PartitionKeyRange] = []
    start = prev = None
    for month in sorted(set(months)):
        index = month.year * 12 + month.month
        if prev is not None and index == prev[1] + 1:
            prev = (month, index)
            continue
        if start is not None:
            ranges.append(PartitionKeyRange(month_key(start), month_key(prev[0])))
        start, prev = month, (month, index)
    if start is not None:
        ranges.append(PartitionKeyRange(month_key(start), month_key(prev[0])))
    return ranges


def range_tags(key_range: PartitionKeyRange) -> dict[str, str]:
    """The tags that make a run build a range of partitions (what a single-run backfill sets)."""
    return {RANGE_START_TAG: key_range.start, RANGE_END_TAG: key_range.end}


def planned_ranges(months: list[dt.date], first_build: bool) -> list[PartitionKeyRange]:
    """The runs an automatic build makes after an ingest: one per contiguous range of the months
    to rebuild; the first build of a warehouse is one run from its first month to its last."""
    if not months:
        return []
    if first_build:
        return [PartitionKeyRange(month_key(min(months)), month_key(max(months)))]
    return contiguous_ranges(months)


MONTHS_TO_BUILD_METADATA = "months_to_build"  # on raw/customs_loads: [[start, end], ...] partition key ranges
