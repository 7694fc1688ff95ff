"""Statistics months: the one place month arithmetic is written.

A month is the `datetime.date` of its first day; its partition key (Dagster's customs_month)
is 'YYYY-MM'. Growth metrics compare a month with the month before, the same month a year
earlier and the year so far, which is why a change to one month reaches the months after it.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable


def first_of_month(day: dt.date) -> dt.date:
    return dt.date(day.year, day.month, 1)


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def month_key(month: dt.date) -> str:
    """The partition key of a month: '2025-06'."""
    return f"{month:%Y-%m}"


def key_month(key: str) -> dt.date:
    """The month of a partition key ('2025-06') or of an ISO date ('2025-06-01')."""
    return dt.date.fromisoformat(key if len(key) > 7 else key + "-01")


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every month from `first` to `last`, both included."""
    out, month = [], first_of_month(first)
    while month <= last:
        out.append(month)
        month = add_months(month, 1)
    return out


def months_around(months: Iterable[dt.date], before: int, after: int) -> list[dt.date]:
    """Each month with the `before` months before it and the `after` months after it."""
    return sorted({add_months(m, k) for m in months for k in range(-before, after + 1)})


def contiguous_runs(months: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """[2025-03, 2025-04, 2025-06] -> [(2025-03, 2025-04), (2025-06, 2025-06)]."""
    runs: list[tuple[dt.date, dt.date]] = []
    for month in sorted(set(months)):
        if runs and month == add_months(runs[-1][1], 1):
            runs[-1] = (runs[-1][0], month)
        else:
            runs.append((month, month))
    return runs


def month_label(months: Iterable[dt.date | str]) -> str:
    """'2023-11..2024-01, 2025-06' (dates, partition keys or ISO dates); 'none' for no month."""
    dates = [key_month(m) if isinstance(m, str) else m for m in months]
    return ", ".join(
        month_key(a) if a == b else f"{month_key(a)}..{month_key(b)}" for a, b in contiguous_runs(dates)
    ) or "none"


def growth_months(first: dt.date, last: dt.date) -> list[dt.date]:
    """The months whose growth metrics change when `first`..`last` change: through December of
    the year after `last` (MoM reaches the next month, YoY and year-to-date the next year)."""
    return months_between(first, dt.date(last.year + 1, 12, 1))
