"""The quality gate's checks, in the order the gate runs them and the UI lists them.

Each check is a SQL query that DuckDB runs over the marts and a GX suite over the small frame
of aggregates it returns (gx_suites.py runs them). Errors block publishing; warnings do not.
What a row-wise dbt test already checks (keys unique, figures not negative: the models' YAML)
is not checked again here.
"""

from __future__ import annotations

from dagster_project.lib.quality.check_spec import QualityCheck
from dagster_project.lib.quality.coverage_checks import COVERAGE_CHECKS
from dagster_project.lib.quality.mirror_checks import MIRROR_CHECKS
from dagster_project.lib.quality.reconciliation_checks import RECONCILIATION_CHECKS
from dagster_project.lib.quality.unit_checks import UNIT_CHECKS

CHECKS: tuple[QualityCheck, ...] = UNIT_CHECKS + RECONCILIATION_CHECKS + COVERAGE_CHECKS + MIRROR_CHECKS
