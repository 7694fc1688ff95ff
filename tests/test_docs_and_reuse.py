"""The serving steps' fixed costs: charts drawn only when their inputs change, slow imports
started in the background when a run starts. (The dbt docs: tests/test_dbt_docs_site.py.)"""

from __future__ import annotations

import os
import shutil
import sys

# ---------------------------------------------------------------------------------------
# prefetching slow imports


def test_prefetched_modules_belong_to_steps_of_the_job():
    from dagster_project.defs.resources import PREFETCH
    from dagster_project.definitions import defs

    job = defs.resolve_job_def("build_warehouse")
    step_keys = {node.name for node in job.graph.nodes}
    assert set(PREFETCH) <= step_keys


def test_prefetch_imports_only_for_selected_steps():
    from dagster_project.defs.resources import prefetch_imports

    assert prefetch_imports(["raw_customs_extracts", "serving__dbt_docs"]) is None
    thread = prefetch_imports(["quality_gate"])
    assert thread is not None and thread.daemon
    thread.join(timeout=120)
    assert "great_expectations" in sys.modules


# ---------------------------------------------------------------------------------------
# a serving-only run reuses the sample build's charts


def test_serving_only_run_reuses_charts(sample_build, tmp_path, monkeypatch):
    """Dagster's record says the growth months are older than the last report: nothing to draw."""
    from dagster import AssetKey, DagsterInstance

    from dagster_project.definitions import defs

    # a copy of the sample's outputs and its Dagster home, so the session's other tests keep theirs
    root = tmp_path / "wh"
    shutil.copytree(sample_build.warehouse.parent, root, ignore=shutil.ignore_patterns("*.build", "*.tmp", "*.wal", "*.dbt"))
    shutil.copytree(sample_build.dagster_home, tmp_path / "dagster_home")
    monkeypatch.setenv("WAREHOUSE_PATH", str(root / sample_build.warehouse.name))
    monkeypatch.setenv("CUSTOMS_LANDING_DIR", str(sample_build.landing))
    keys = [AssetKey(["serving", "analyst_report"])]
    with DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        result = defs.resolve_job_def("build_warehouse").execute_in_process(
            instance=instance, asset_selection=keys, raise_on_error=False
        )
    assert result.success
    materialized = {
        e.event_specific_data.materialization.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
        for e in result.all_events
        if e.is_step_materialization
    }
    assert materialized["serving/analyst_report"]["rendered"].value is False
    assert os.path.exists(root / "report" / "report.json")
