"""The quality gate's checks, in the order the gate runs them and the UI lists them.

Each check is a SQL query that DuckDB runs over the marts and a GX suite over the small frame
of aggregates it returns (gx_suites.py runs them). Errors block publishing; warnings do not.
What a row-wise dbt test already checks (keys unique, figures not negative: the models' YAML)
is not checked again here.
"""

from __future__ import annotations

from dagster_project.lib.quality.check_spec import QualityCheck
from dagster_project.lib.quality.coverage_checks import COVERAGE_CHECKS
from dagster_project.lib.quality.reconciliation_checks import RECONCILIATION_CHECKS
from dagster_project.lib.quality.unit_checks import UNIT_CHECKS

CHECKS: tuple[QualityCheck, ...] = UNIT_CHECKS + RECONCILIATION_CHECKS + COVERAGE_CHECKS

# TEMPORARY, for importers not yet moved (they are not this module's to edit): the transform
# stage's months_to_build.py imports Scope and month_label (as month_ranges) from here, and
# tests/test_decimal_rescale.py imports _round4. Remove once they import from lib.months,
# lib.quality.scope and lib.quality.reconciliation_checks.
from dagster_project.lib.months import month_label  # noqa: E402,F401
from dagster_project.lib.quality.reconciliation_checks import _round4  # noqa: E402,F401
from dagster_project.lib.quality.scope import Scope  # noqa: E402,F401
