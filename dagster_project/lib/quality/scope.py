"""Which months a gate run checks, and the rendering of the checks' month placeholders.

A gate after a build checks the months rebuilt since the last publish (Dagster's record, read
in defs/quality/checks.py), plus the months each check needs to judge them. The queries mark
where: `{months X}` the months rebuilt, `{growth_months X}` the months whose growth metrics were
rebuilt, `{window X}` a rebuilt month and the 11 before it (trailing 12-month medians),
`{neighbourhood X}` 12 months either side (a code's series around a rebuilt month: gaps, usual
number of partners), `{overlaps A B}` periods A..B holding a rebuilt month, `{span:NAME X}` the
months those periods cover (reconciliation_checks.SPANS). Every one is `true` in a full check.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Iterable

import duckdb

from dagster_project.lib.months import contiguous_runs, growth_months, month_label, months_around
from dagster_project.lib.warehouse.database import table_exists

_PLACEHOLDER = re.compile(r"\{(months|growth_months|window|neighbourhood|overlaps|span:\w+) ([^{}]+?)\}")
WINDOW_BEFORE = 11  # the trailing 12-month window of the unit-value checks
NEIGHBOURHOOD = 12
GROWTH_TABLE = ("marts", "export_growth_monthly")


def _in(column: str, months: Iterable[dt.date]) -> str:
    months = sorted(set(months))
    if not months:
        return "false"
    return f"{column} in (" + ", ".join(f"date '{m:%Y-%m-%d}'" for m in months) + ")"


def render_full(sql: str) -> str:
    """A query over every month: each placeholder is `true`."""
    return _PLACEHOLDER.sub("true", sql)


@dataclass(frozen=True)
class Scope:
    """The months a gate checks after a build (None instead of a Scope means every month)."""

    months: tuple[dt.date, ...]
    growth_months: tuple[dt.date, ...] = ()

    def render(self, sql: str, spans: dict[str, tuple | None] | None = None) -> str:
        def sub(match: re.Match) -> str:
            kind, arg = match.group(1), match.group(2).strip()
            if kind == "months":
                return _in(arg, self.months)
            if kind == "growth_months":
                return _in(arg, self.growth_months)
            if kind == "window":
                return _in(arg, months_around(self.months, WINDOW_BEFORE, 0))
            if kind == "neighbourhood":
                return _in(arg, months_around(self.months, NEIGHBOURHOOD, NEIGHBOURHOOD))
            if kind == "overlaps":
                start, end = arg.split()
                return "(" + " or ".join(f"({start} <= date '{m:%Y-%m-%d}' and {end} >= date '{m:%Y-%m-%d}')"
                                         for m in self.months) + ")" if self.months else "false"
            span = (spans or {}).get(kind.split(":", 1)[1])
            if not span or span[0] is None:
                return "false"
            return f"{arg} between date '{span[0]:%Y-%m-%d}' and date '{span[1]:%Y-%m-%d}'"

        return _PLACEHOLDER.sub(sub, sql)

    def label(self) -> str:
        return month_label(self.months)

    def describe(self, sql: str) -> str:
        """Which months a check whose queries are `sql` looked at, in words (the gate's metadata)."""
        months = month_label(self.months)
        if not self.months and not self.growth_months and _PLACEHOLDER.search(sql):
            return "none (no month rebuilt since the last publish)"
        if "{growth_months" in sql:
            return f"growth metrics of {month_label(self.growth_months)}"
        if "{window" in sql:
            return f"{months}, against the trailing 12 months ({month_label(months_around(self.months, WINDOW_BEFORE, 0))})"
        if "{neighbourhood" in sql:
            return f"{months}, within the series {month_label(months_around(self.months, NEIGHBOURHOOD, NEIGHBOURHOOD))}"
        if "{overlaps" in sql:
            return f"periods holding {months}"
        if "{months" in sql:
            return months
        return "not by month"


def scope_of(con: duckdb.DuckDBPyConnection, months: Iterable[dt.date]) -> Scope | None:
    """The gate's scope after `months` were rebuilt; None when they are every month the marts hold.

    Their growth metrics are those of each contiguous run of them (lib.months.growth_months: a
    run's range is what one dbt build rebuilds), kept to the months the growth table holds: a
    rebuilt June reaches through December of the next year, most of which is not loaded yet.
    """
    months = sorted(set(months))
    growth = sorted({g for first, last in contiguous_runs(months) for g in growth_months(first, last)})
    if table_exists(con, *GROWTH_TABLE):
        held = {r[0] for r in con.execute(f"select distinct month from {'.'.join(GROWTH_TABLE)}").fetchall()}
        if held and held <= set(months):
            return None
        growth = [m for m in growth if m in held]
    return Scope(tuple(months), tuple(growth))
