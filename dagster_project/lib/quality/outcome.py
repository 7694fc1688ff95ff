"""The result of one quality check in one gate run (what the UI, audit.check_results and logs show)."""

from __future__ import annotations

from dataclasses import dataclass

from dagster_project.lib.quality.check_spec import QualityCheck


@dataclass
class CheckOutcome:
    check: QualityCheck
    passed: bool
    observed: str
    expectation_results: list[dict]
    failing_sample: list[dict]
    population_rows: int
    seconds: float
    months_checked: str = "all months"

    @property
    def severity(self) -> str:
        return self.check.severity
