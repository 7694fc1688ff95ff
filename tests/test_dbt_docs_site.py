"""The dbt docs site: `dbt docs generate --static` on the served file, published as data/docs/index.html."""

from __future__ import annotations

import json
import shutil

import duckdb

from dagster_project.defs.transform.dbt_assets import dbt_project

DOCS_KEY = ["serving", "dbt_docs"]


def _inlined(page: str, name: str) -> tuple[str, dict]:
    """The JSON document dbt's static page holds in place of its `"<NAME>.JSON INLINE DATA"` placeholder."""
    start = page.index(name + ':{"metadata"') + len(name) + 1
    value, end = json.JSONDecoder().raw_decode(page, start)
    return page[start:end], value


def _site(index):
    page = index.read_text(encoding="utf-8")
    return page, _inlined(page, "manifest"), _inlined(page, "catalog")


def _project_models() -> set[str]:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    return {uid for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"}


def _docs_run(monkeypatch, root, landing):
    from dagster import AssetKey, DagsterInstance

    from dagster_project.definitions import defs

    monkeypatch.setenv("WAREHOUSE_PATH", str(root / "warehouse.duckdb"))
    monkeypatch.setenv("CUSTOMS_LANDING_DIR", str(landing))
    with DagsterInstance.ephemeral() as instance:
        return defs.resolve_job_def("build_warehouse").execute_in_process(
            instance=instance, asset_selection=[AssetKey(DOCS_KEY)], raise_on_error=False
        )


def test_sample_docs_page_opens_from_disk_with_every_model(sample_build):
    docs = sample_build.warehouse.parent / "docs"
    page, (manifest_text, manifest), (catalog_text, catalog) = _site(docs / "index.html")

    # both documents are in the page, so it needs no fetch of manifest.json / catalog.json (which
    # browsers refuse to pages opened from disk), and nothing in them ends its <script> early
    assert "MANIFEST.JSON INLINE DATA" not in page and "CATALOG.JSON INLINE DATA" not in page
    assert "</script" not in manifest_text.lower() and "</script" not in catalog_text.lower()
    assert json.loads((docs / "manifest.json").read_text()) == manifest
    assert json.loads((docs / "catalog.json").read_text()) == catalog

    # every model of the project, with its columns as DuckDB has them in the served file
    models = {uid for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"}
    assert models == _project_models() and len(models) >= 16
    seeds = {uid for uid, node in manifest["nodes"].items() if node["resource_type"] == "seed"}
    assert models | seeds <= set(catalog["nodes"])
    assert all(catalog["nodes"][uid]["columns"] for uid in models | seeds)
    assert set(catalog["sources"]) == set(manifest["sources"]) == {
        "source.customs.raw.customs_rows", "source.customs.raw.customs_loads",
        "source.customs.raw.comtrade_rows", "source.customs.raw.comtrade_loads"}
    columns = lambda uid, group="nodes": set(catalog[group][uid]["columns"])  # noqa: E731
    assert {"month", "hs8", "partner_code", "quantity_kg", "value_usd", "load_id", "source_load_ids"} <= columns("model.customs.fct_exports_monthly")
    assert {"mom_pct", "yoy_pct", "ytd_quantity_kg", "share_of_world_pct"} <= columns("model.customs.export_growth_rare_earths")
    assert {"month", "partner_iso3", "quantity_t"} <= columns("model.customs.v_magnet_exports_by_partner")
    assert {"load_id", "file_path", "file_sha256"} <= columns("source.customs.raw.customs_loads", "sources")
    assert {"source_file", "file_sha256", "load_id", "row_number"} <= columns("source.customs.raw.customs_rows", "sources")
    fct = catalog["nodes"]["model.customs.fct_exports_monthly"]
    assert fct["metadata"]["schema"] == "marts" and fct["metadata"]["type"] == "BASE TABLE"
    assert fct["metadata"]["comment"] and fct["columns"]["quantity_kg"]["comment"]  # persist_docs
    assert catalog["nodes"]["model.customs.v_export_growth_named"]["metadata"]["type"] == "VIEW"
    assert not catalog["errors"]

    # the compiled SQL of every model (dbt's docs show it beside the source)
    for uid in models:
        assert manifest["nodes"][uid]["compiled_code"], uid
    compiled = manifest["nodes"]["model.customs.fct_exports_monthly"]["compiled_code"]
    assert "{{" not in compiled and 'from "intermediate"."int_trade_monthly" t' in compiled

    # the overview page
    overview = manifest["docs"]["doc.customs.__overview__"]["block_contents"]
    for text in ("China customs (GACC) export statistics", "marts.fct_exports_monthly", "marts.export_growth_monthly",
                 "marts.export_growth_rare_earths", "marts.v_magnet_exports_by_partner", "file_sha256", "load_id",
                 "kilograms", "US dollars"):
        assert text in overview, text


def test_serving_only_run_documents_the_served_file_not_the_working_copy(sample_build, tmp_path, monkeypatch):
    # a copy of the sample's served file and outputs (the session's other tests keep theirs), with
    # no working copy: as after a publish, while the background copy has not made one yet
    root = tmp_path / "wh"
    shutil.copytree(sample_build.warehouse.parent, root, ignore=shutil.ignore_patterns("*.build", "*.tmp", "*.wal", "*.dbt", "*.lock"))
    served = root / sample_build.warehouse.name
    served.chmod(0o644)  # published read-only (0444): this copy is the test's to change
    con = duckdb.connect(str(served))
    con.execute("ALTER TABLE marts.dim_month ADD COLUMN only_in_the_served_file INTEGER")
    con.close()
    index = root / "docs" / "index.html"
    before = index.stat().st_mtime_ns

    # a BI tool holding the file open: dbt opening it for writing would fail on DuckDB's file lock
    reader = duckdb.connect(str(served), read_only=True)
    try:
        result = _docs_run(monkeypatch, root, sample_build.landing)
        assert reader.execute("SELECT count(*) FROM marts.fct_exports_monthly").fetchone()[0] > 0
    finally:
        reader.close()
    assert result.success
    [materialization] = [e.materialization for e in result.get_asset_materialization_events()]
    assert materialization.metadata["index"].value == str(index)
    assert materialization.metadata["models"].value == len(_project_models())
    assert materialization.metadata["sources"].value == 4

    assert index.stat().st_mtime_ns != before  # regenerated
    _, _, (_, catalog) = _site(index)
    assert "only_in_the_served_file" in catalog["nodes"]["model.customs.dim_month"]["columns"]
    # dbt opened neither the working copy (opening it would have created it) nor the served file for writing
    assert not served.with_name(served.name + ".build").exists()
    assert not served.with_name(served.name + ".wal").exists()
    assert not [p.name for p in index.parent.iterdir() if p.name.startswith(".")]  # no temporary files left

    # a second run reuses dbt's parse of the first (its target folder is the warehouse's own)
    target = served.with_name(served.name + ".dbt") / "docs"
    assert (target / "partial_parse.msgpack").exists()
    assert _docs_run(monkeypatch, root, sample_build.landing).success
    log = (target / "dbt.log").read_text(encoding="utf-8")
    assert "Partial parsing enabled" in log


def test_docs_need_a_served_file(tmp_path, monkeypatch):
    result = _docs_run(monkeypatch, tmp_path / "wh", tmp_path / "landing")
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "no served warehouse to document" in failure.event_specific_data.error.cause.message
    assert not (tmp_path / "wh" / "docs").exists()


def test_docs_open_on_the_project_overview(sample_build):
    """dbt's page shows `doc.dbt.__overview__` (its generic welcome) unless the project has its own
    `__overview__` doc, which the page's OverviewCtrl then prefers: the project's must be inlined."""
    page = (sample_build.warehouse.parent / "docs" / "index.html").read_text(encoding="utf-8")
    _, manifest = _inlined(page, "manifest")
    overviews = [doc for doc in manifest["docs"].values() if doc["name"] == "__overview__"]
    chosen = next((doc for doc in overviews if doc["package_name"] != "dbt"), manifest["docs"]["doc.dbt.__overview__"])
    assert chosen["unique_id"] == "doc.customs.__overview__"
    assert chosen["block_contents"].startswith("# China customs (GACC) export statistics")
    assert "Welcome to the auto-generated documentation" not in chosen["block_contents"]
    assert "dim_country" in chosen["block_contents"]
    # the page still picks the overview that way (a dbt upgrade changing it would fail here)
    assert 'filter(n.docs,{name:"__overview__"})' in page and '"dbt"!=e.package_name&&(i=e)' in page
