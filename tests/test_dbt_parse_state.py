"""dbt's target folders: one per kind of dbt invocation and warehouse, overwritten by each build.

Each @dbt_assets step writes `<warehouse>.dbt/<op name>` (lib/settings.py, dbt's own
--target-path): the folders do not grow with the number of builds, and dbt's partial-parse state
in them belongs to that warehouse, so a later build of it re-reads only what changed. The monthly
models take the month range as --vars, which dbt documents as a reason to parse again.
"""

from __future__ import annotations

import pytest
from gacc_files import copy_sample

from dagster_project.lib.settings import Settings

pytestmark = pytest.mark.slow


def _du(path) -> dict[str, int]:
    return {p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in path.iterdir() if p.is_dir()}


def test_target_folders_are_bounded_and_keep_the_parse_state(workspace):
    copy_sample(workspace.landing, months=["202505"])
    assert workspace.build().success
    targets = Settings(landing_dir=workspace.landing, warehouse_path=workspace.warehouse).dbt_target("x").parent
    first = _du(targets)
    assert {"customs_monthly_models", "customs_dbt_models", "docs"} <= set(first)
    rest_log = targets / "customs_dbt_models" / "dbt.log"
    logged = rest_log.stat().st_size

    copy_sample(workspace.landing, months=["202506"])
    assert workspace.build().success
    second = _du(targets)
    assert set(second) == set(first)  # no folder per build

    log = rest_log.read_text(errors="replace")[logged:]
    assert "Starting full parse" not in log and "Unable to do partial parsing" not in log
    monthly = (targets / "customs_monthly_models" / "dbt.log").read_text(errors="replace")
    assert "Unable to do partial parsing because config vars, config profile, or config target have changed" in monthly
    assert workspace.scalar("SELECT sum(quantity_kg) FROM marts.fct_exports_monthly "
                            "WHERE hs8 = '85051110' AND month = DATE '2025-06-01'") == 3_188_000
