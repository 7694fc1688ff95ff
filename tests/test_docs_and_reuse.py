"""The serving steps' fixed costs: charts drawn only when their inputs change, slow imports
started in the background when a run starts. (The dbt docs: tests/test_dbt_docs_site.py.)"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.serving import charts
from test_charts_and_exports import _tiny_warehouse

# ---------------------------------------------------------------------------------------
# charts: drawn again only when their inputs change


@pytest.fixture
def magnets(tmp_path):
    return _tiny_warehouse(tmp_path / "wh.duckdb")


def _render(path: Path, out: Path, **kwargs):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return charts.render_report(con, out, **kwargs)
    finally:
        con.close()


def _no_drawing(monkeypatch):
    def fail(*_args, **_kwargs):
        raise AssertionError("drew a chart although its inputs did not change")

    monkeypatch.setattr(charts, "_save_png", fail)


def test_unchanged_inputs_keep_the_files(magnets, tmp_path, monkeypatch):
    out = tmp_path / "report"
    first = _render(magnets, out)
    assert first.rendered and (out / charts.REPORT_JSON).exists()
    record = json.loads((out / charts.REPORT_JSON).read_text())
    assert record["headline"] == first.headline and set(record["files"]) == {p.name for p in first.paths}
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.paths}

    with monkeypatch.context() as m:
        _no_drawing(m)
        again = _render(magnets, out)
    assert not again.rendered and again.headline == first.headline
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in again.paths} == before

    assert _render(magnets, out, reuse=False).rendered  # forced


def test_changed_data_draws_again(magnets, tmp_path):
    out = tmp_path / "report"
    first = _render(magnets, out)
    png = first.world_png.read_bytes()
    con = duckdb.connect(str(magnets))
    con.execute("UPDATE marts.export_growth_monthly SET quantity_kg = quantity_kg * 2 "
                "WHERE partner_iso3 = 'WLD' AND month = DATE '2025-12-01' AND hs8 = '85051110'")
    con.close()
    second = _render(magnets, out)
    assert second.rendered and second.world_png.read_bytes() != png
    assert second.headline["world_t"] == pytest.approx(2 * first.headline["world_t"])


@pytest.mark.parametrize("damage", ["remove_png", "edit_html", "remove_record", "corrupt_record"])
def test_missing_or_edited_files_draw_again(magnets, tmp_path, damage):
    out = tmp_path / "report"
    first = _render(magnets, out)
    if damage == "remove_png":
        first.partners_png.unlink()
    elif damage == "edit_html":
        first.html.write_text(first.html.read_text() + "<!-- edited -->")
    elif damage == "remove_record":
        (out / charts.REPORT_JSON).unlink()
    else:
        (out / charts.REPORT_JSON).write_text("{not json")
    second = _render(magnets, out)
    assert second.rendered
    for x in first.paths:
        assert x.exists()
    assert "<!-- edited -->" not in first.html.read_text()


def test_a_new_renderer_draws_again(magnets, tmp_path, monkeypatch):
    out = tmp_path / "report"
    _render(magnets, out)
    real = charts._version
    monkeypatch.setattr(charts, "_version", lambda dist: "0.0-other" if dist == "matplotlib" else real(dist))
    assert _render(magnets, out).rendered


def test_charts_module_does_not_import_matplotlib(tmp_path):
    import subprocess

    code = "import sys, dagster_project.lib.serving.charts; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "False"


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
    from dagster import AssetKey, DagsterInstance

    from dagster_project.definitions import defs

    # a copy of the sample's outputs, so the session's other tests keep theirs untouched
    root = tmp_path / "wh"
    shutil.copytree(sample_build.warehouse.parent, root, ignore=shutil.ignore_patterns("*.build", "*.tmp", "*.wal"))
    monkeypatch.setenv("WAREHOUSE_PATH", str(root / sample_build.warehouse.name))
    monkeypatch.setenv("CUSTOMS_LANDING_DIR", str(sample_build.landing))
    keys = [AssetKey(["serving", "analyst_report"])]
    with DagsterInstance.ephemeral() as instance:
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
