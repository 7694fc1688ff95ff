"""The serving steps' fixed costs: dbt docs without a dbt process, charts drawn only when their
inputs change, slow imports started in the background when a run starts."""

from __future__ import annotations

import json
import os
import shutil
import sys

import duckdb
import pytest

from dagster_project.lib.serving.dbt_docs import (
    CATALOG_PLACEHOLDER,
    MANIFEST_PLACEHOLDER,
    build_docs_site,
    catalog_fingerprint,
    catalog_from_duckdb,
    dbt_docs_template,
)

# ---------------------------------------------------------------------------------------
# the catalog, from DuckDB

CATALOG_DB_SQL = """
CREATE SCHEMA marts;
CREATE SCHEMA raw;
CREATE SCHEMA staging;
CREATE TABLE marts.fct (month DATE, hs8 VARCHAR, quantity_kg DECIMAL(38, 3));
COMMENT ON TABLE marts.fct IS 'facts';
COMMENT ON COLUMN marts.fct.hs8 IS 'HS code, 8 digits';
CREATE TABLE marts.Dim_Partner (partner_code VARCHAR);
CREATE VIEW staging.stg_rows_v AS SELECT month, hs8 FROM marts.fct;
CREATE TABLE raw.customs_rows (load_id VARCHAR, row_number BIGINT);
CREATE TABLE marts.not_in_the_manifest (x INTEGER);
"""


def _manifest() -> dict:
    def node(kind, name, schema, materialized, alias=None):
        return {"resource_type": kind, "name": name, "alias": alias or name, "schema": schema,
                "database": "warehouse", "config": {"materialized": materialized}}

    return {
        "metadata": {"dbt_version": "1.11.16", "invocation_id": "abc", "invocation_started_at": "2026-01-01T00:00:00Z"},
        "nodes": {
            "model.customs.fct": node("model", "fct", "marts", "table"),
            "seed.customs.dim_partner": node("seed", "dim_partner", "MARTS", "seed"),  # case differs
            "model.customs.stg_rows": node("model", "stg_rows", "staging", "view", alias="stg_rows_v"),
            "model.customs.eph": node("model", "eph", "marts", "ephemeral"),
            "test.customs.not_null_fct_hs8": node("test", "not_null_fct_hs8", "marts", "test"),
        },
        "sources": {
            "source.customs.raw.customs_rows": {"resource_type": "source", "name": "customs_rows",
                                                "identifier": "customs_rows", "schema": "raw", "database": "warehouse"},
        },
    }


@pytest.fixture
def catalog_db(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(CATALOG_DB_SQL)
    con.close()
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def test_catalog_from_duckdb_maps_relations_to_the_manifest(catalog_db):
    catalog = catalog_from_duckdb(catalog_db, _manifest())
    assert list(catalog) == ["metadata", "nodes", "sources", "errors"] and catalog["errors"] is None
    assert set(catalog["nodes"]) == {"model.customs.fct", "seed.customs.dim_partner", "model.customs.stg_rows"}
    assert set(catalog["sources"]) == {"source.customs.raw.customs_rows"}

    fct = catalog["nodes"]["model.customs.fct"]
    assert fct["unique_id"] == "model.customs.fct"
    assert fct["metadata"] == {"type": "BASE TABLE", "schema": "marts", "name": "fct", "database": "warehouse",
                               "comment": "facts", "owner": None}
    assert list(fct["columns"]) == ["month", "hs8", "quantity_kg"]
    assert fct["columns"]["hs8"] == {"type": "VARCHAR", "index": 2, "name": "hs8", "comment": "HS code, 8 digits"}
    assert fct["columns"]["quantity_kg"]["type"] == "DECIMAL(38,3)"
    assert fct["stats"]["has_stats"]["value"] is False
    assert catalog["nodes"]["model.customs.stg_rows"]["metadata"]["type"] == "VIEW"
    assert catalog["nodes"]["seed.customs.dim_partner"]["metadata"]["name"] == "Dim_Partner"
    assert catalog["metadata"]["dbt_version"] == "1.11.16" and catalog["metadata"]["generated_at"].endswith("Z")


def test_catalog_from_duckdb_is_a_valid_dbt_catalog(catalog_db):
    schemas = pytest.importorskip("dbt.artifacts.schemas.catalog")
    catalog = catalog_from_duckdb(catalog_db, _manifest())
    artifact = schemas.CatalogArtifact.from_dict(json.loads(json.dumps(catalog)))
    assert set(artifact.nodes) == set(catalog["nodes"])


def test_catalog_fingerprint_ignores_when_it_was_made(catalog_db):
    from datetime import datetime, timezone

    first = catalog_from_duckdb(catalog_db, _manifest(), generated_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    second = catalog_from_duckdb(catalog_db, _manifest())
    assert first["metadata"]["generated_at"] == "2026-01-01T00:00:00Z" != second["metadata"]["generated_at"]
    assert catalog_fingerprint(first) == catalog_fingerprint(second)
    assert catalog_fingerprint(first) != catalog_fingerprint(catalog_from_duckdb(catalog_db, {**_manifest(), "sources": {}}))


def test_build_docs_site_writes_a_page_that_opens_from_disk(catalog_db, tmp_path):
    if dbt_docs_template() is None:
        pytest.skip("dbt-core not installed")
    manifest = _manifest()
    manifest["nodes"]["model.customs.fct"]["description"] = "ends </script> early? no"
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    index = build_docs_site(catalog_db, manifest_path, tmp_path / "site")
    page = index.read_text(encoding="utf-8")
    assert MANIFEST_PLACEHOLDER not in page and CATALOG_PLACEHOLDER not in page
    assert "ends <\\/script> early? no" in page and "ends </script> early" not in page
    assert json.loads((tmp_path / "site" / "manifest.json").read_text()) == manifest
    catalog = json.loads((tmp_path / "site" / "catalog.json").read_text())
    assert catalog["nodes"]["model.customs.fct"]["columns"]["hs8"]["comment"] == "HS code, 8 digits"
    assert not [p.name for p in (tmp_path / "site").iterdir() if p.name.startswith(".")]


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
# the sample build's docs, and a serving-only run that reuses them


def test_sample_docs_show_every_model_with_columns_and_sql(sample_build):
    docs = sample_build.warehouse.parent / "docs"
    manifest = json.loads((docs / "manifest.json").read_text())
    catalog = json.loads((docs / "catalog.json").read_text())
    models = {uid for uid, n in manifest["nodes"].items() if n["resource_type"] in ("model", "seed")}
    assert models and models <= set(catalog["nodes"])
    fct = catalog["nodes"]["model.customs.fct_exports_monthly"]
    assert fct["metadata"]["comment"] and all(c["comment"] for c in fct["columns"].values())
    assert set(catalog["sources"]) == set(manifest["sources"])
    # compiled SQL of this build's dbt run, as `dbt docs generate` showed it
    assert manifest["nodes"]["model.customs.fct_exports_monthly"]["compiled_code"]
    page = (docs / "index.html").read_text(encoding="utf-8")
    assert MANIFEST_PLACEHOLDER not in page and CATALOG_PLACEHOLDER not in page
    assert "fct_exports_monthly" in page


def test_serving_only_run_reuses_docs_and_charts(sample_build, tmp_path, monkeypatch):
    from dagster import AssetKey, DagsterInstance

    from dagster_project.definitions import defs

    # a copy of the sample's outputs, so the session's other tests keep theirs untouched
    root = tmp_path / "wh"
    shutil.copytree(sample_build.warehouse.parent, root, ignore=shutil.ignore_patterns("*.build", "*.tmp", "*.wal"))
    monkeypatch.setenv("WAREHOUSE_PATH", str(root / sample_build.warehouse.name))
    monkeypatch.setenv("CUSTOMS_LANDING_DIR", str(sample_build.landing))
    index = root / "docs" / "index.html"
    before = index.stat().st_mtime_ns

    keys = [AssetKey(["serving", "dbt_docs"]), AssetKey(["serving", "analyst_report"])]
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
    assert materialized["serving/dbt_docs"]["regenerated"].value is False
    assert materialized["serving/analyst_report"]["rendered"].value is False
    assert index.stat().st_mtime_ns == before
    assert os.path.exists(root / "report" / "report.json")
