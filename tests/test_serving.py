"""BI serving: readers never block a build nor see half a build; docs, Parquet, charts, views."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import duckdb
import pytest

from conftest import make_workspace
from gacc_files import copy_sample

BI_QUERIES = (
    "SELECT month_label, quantity_t, mom_pct, yoy_pct FROM marts.v_magnet_exports_by_partner WHERE partner_iso3 = 'WLD' ORDER BY month",
    "SELECT partner_iso3, sum(quantity_kg) FROM marts.fct_exports_monthly GROUP BY ALL ORDER BY 2 DESC LIMIT 10",
    "SELECT max(month), count(*) FROM marts.export_growth_monthly",
    "SELECT check_name, passed FROM audit.check_results ORDER BY checked_at DESC LIMIT 20",
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Every month of the sample but the last (the rebuild test adds it); the read-only tests
    use the session's sample build instead."""
    ws = make_workspace(tmp_path_factory.mktemp("serving"))
    copy_sample(ws.landing, months=[f"2025{m:02d}" for m in range(1, 12)] + [f"2024{m:02d}" for m in range(1, 13)])
    assert ws.build().success
    return ws


@pytest.mark.slow
def test_readers_keep_working_through_a_rebuild_and_see_the_new_data_after_reconnecting(served, tmp_path):
    ws = served
    copy_sample(ws.landing, months=["202512"])  # the December release arrives
    env = dict(os.environ, CUSTOMS_LANDING_DIR=str(ws.landing), WAREHOUSE_PATH=str(ws.warehouse),
               DAGSTER_HOME=str(tmp_path / "dagster_home"))

    held = duckdb.connect(str(ws.warehouse), read_only=True)  # a dashboard left open
    assert str(held.execute("SELECT max(month) FROM marts.fct_exports_monthly").fetchone()[0]) == "2025-11-01"
    stats = {"held": 0, "short": 0, "failures": []}
    stop = threading.Event()

    def short_readers():
        while not stop.is_set():
            try:
                con = duckdb.connect(str(ws.warehouse), read_only=True)
                try:
                    for sql in BI_QUERIES:
                        con.execute(sql).fetchall()
                    months = con.execute("SELECT count(DISTINCT month) FROM marts.fct_exports_monthly").fetchone()[0]
                    if months not in (23, 24):  # old or new complete state, never in between
                        stats["failures"].append(f"half-built: {months} months")
                finally:
                    con.close()
                stats["short"] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                stats["failures"].append(repr(exc))
            time.sleep(0.02)

    thread = threading.Thread(target=short_readers)
    thread.start()
    log = (tmp_path / "build.log").open("w")  # a file, not a pipe: Dagster's log would fill a pipe
    build = subprocess.Popen([sys.executable, "-m", "dagster_project.cli", "build"], env=env,
                             stdout=log, stderr=subprocess.STDOUT, text=True)
    while build.poll() is None:
        try:
            held.execute(BI_QUERIES[0]).fetchall()
            stats["held"] += 1
        except Exception as exc:  # noqa: BLE001
            stats["failures"].append(repr(exc))
        time.sleep(0.05)
    log.close()
    output = (tmp_path / "build.log").read_text()
    stop.set()
    thread.join()

    assert build.returncode == 0, output[-3000:]
    assert stats["failures"] == []
    assert stats["held"] > 20 and stats["short"] > 20
    print(f"\nreader figures: held-connection queries {stats['held']}, short connections {stats['short']}, failures 0")
    # the held connection still sees its snapshot; a new connection sees December
    assert str(held.execute("SELECT max(month) FROM marts.fct_exports_monthly").fetchone()[0]) == "2025-11-01"
    held.close()
    fresh = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        assert str(fresh.execute("SELECT max(month) FROM marts.fct_exports_monthly").fetchone()[0]) == "2025-12-01"
    finally:
        fresh.close()


def test_column_comments_are_in_the_served_catalog(sample_build):
    missing = sample_build.query(
        """SELECT c.table_name, c.column_name FROM duckdb_columns() c JOIN duckdb_tables() t
           ON t.schema_name = c.schema_name AND t.table_name = c.table_name
           WHERE c.schema_name = 'marts' AND (c.comment IS NULL OR c.comment = '')"""
    )
    assert missing == []
    tables = sample_build.query("SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'marts'")
    # 7 + dim_country, mirror_trade_monthly, export_growth_by_province/_by_regime, fct_imports_monthly,
    # import_growth_monthly
    assert len(tables) == 13 and all(comment for _, comment in tables)
    assert (sample_build.warehouse.parent / "docs" / "index.html").stat().st_size > 100_000


def test_parquet_exports_match_the_marts_row_for_row(sample_build):
    export = sample_build.warehouse.parent / "export"
    for (table,) in sample_build.query("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts' "
                                 "UNION ALL SELECT view_name FROM duckdb_views() WHERE schema_name = 'marts'"):
        path = export / f"{table}.parquet"
        assert path.exists(), table
        source = f"'{path}/**/*.parquet'" if path.is_dir() else f"'{path}'"
        diff = sample_build.scalar(
            f"""SELECT count(*) FROM (
                (SELECT * FROM marts.{table} EXCEPT ALL SELECT * FROM read_parquet({source}))
                UNION ALL
                (SELECT * FROM read_parquet({source}) EXCEPT ALL SELECT * FROM marts.{table}))"""
        )
        assert diff == 0, table


def test_charts_are_valid_images_and_the_report_links_them(sample_build):
    from matplotlib.image import imread

    report = sample_build.warehouse.parent / "report"
    html = (report / "report.html").read_text()
    for name in ("world_85051110.png", "partners_85051110.png"):
        png = report / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = imread(png).shape
        assert width >= 800 and height >= 500
        assert name in html


def test_bi_views_survive_attaching_under_another_name(sample_build):
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{sample_build.warehouse}' AS customs (READ_ONLY)")
        june = con.execute(
            "SELECT quantity_t, mom_pct, yoy_pct FROM customs.marts.v_magnet_exports_by_partner "
            "WHERE partner_iso3 = 'WLD' AND month_label = '2025-06'"
        ).fetchone()
        assert june == (3188.0, 157.5, -38.1)
        us = con.execute(
            "SELECT partner_name_en, quantity_t FROM customs.marts.v_magnet_exports_by_partner "
            "WHERE partner_iso3 = 'USA' AND month_label = '2025-05'"
        ).fetchone()
        assert us == ("United States", 46.4)
    finally:
        con.close()
