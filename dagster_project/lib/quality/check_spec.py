"""What a quality check is: a DuckDB query of aggregates and the GX expectations they must meet.

Severity: an ERROR check that fails blocks publishing; a WARN check never does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR, WARN = "ERROR", "WARN"

# Asset keys (user strings) the checks are attached to in Dagster.
FCT = "marts/fct_exports_monthly"
IMPORTS_FCT = "marts/fct_imports_monthly"
GROWTH = "marts/export_growth_monthly"
RAW = "raw/customs_rows"


@dataclass(frozen=True)
class Expectation:
    type: str  # a great_expectations.expectations class name
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class QualityCheck:
    name: str
    asset: str  # asset key, user string
    severity: str
    description: str
    population_sql: str  # the aggregates GX validates
    expectations: tuple[Expectation, ...]
    sample_sql: str | None = None  # failing raw rows, run only on failure
    requires: tuple[str, ...] = field(default_factory=tuple)  # temp tables from unit_checks.PREPARE


def E(type_: str, **kwargs) -> Expectation:
    return Expectation(type_, kwargs)
