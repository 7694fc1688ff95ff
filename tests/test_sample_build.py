"""The bundled sample, built through the Dagster job, gives the published 2025 figures."""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
import sys

import pytest

from dagster_project.lib.settings import SEEDS_DIR


def growth(ws, month: str, iso3: str, hs8: str = "85051110"):
    return ws.query(
        "SELECT quantity_kg, mom_pct, yoy_pct, ytd_quantity_kg, ytd_yoy_pct, share_of_world_pct, unit_value_usd_per_kg "
        "FROM marts.export_growth_monthly WHERE month = CAST($m AS DATE) AND partner_iso3 = $p AND hs8 = $h",
        {"m": month, "p": iso3, "h": hs8},
    )[0]


def test_june_2025_world(sample_build):
    kg, mom, yoy, *_ = growth(sample_build, "2025-06-01", "WLD")
    assert float(kg) == 3_188_000
    assert round(mom, 1) == 157.5
    assert round(yoy, 1) == -38.1


def test_may_2025_world(sample_build):
    kg, mom, yoy, *_ = growth(sample_build, "2025-05-01", "WLD")
    assert float(kg) == 1_238_000
    assert round(yoy, 1) == -74.0


def test_united_states(sample_build):
    may = growth(sample_build, "2025-05-01", "USA")
    june = growth(sample_build, "2025-06-01", "USA")
    assert float(may[0]) == 46_400 and round(may[2], 1) == -93.3
    assert float(june[0]) == 353_000


def test_every_published_monthly_figure_is_reproduced(sample_build):
    """Each monthly 85051110 figure in the published seed equals the warehouse (tonnes)."""
    with (SEEDS_DIR / "published_figures.csv").open() as handle:
        published = [r for r in csv.DictReader(handle) if r["hs_scope"] == "85051110" and r["period_start"] == r["period_end"]
                     and r["flow"] == "exports" and r["reporter"] == "CHN"]
    assert len(published) >= 35
    for row in published:
        kg = sample_build.scalar(
            "SELECT quantity_kg FROM marts.export_growth_monthly WHERE hs8 = '85051110' AND partner_iso3 = $p "
            "AND month = CAST($m || '-01' AS DATE)",
            {"p": row["partner"], "m": row["period_start"]},
        )
        assert kg is not None, row
        assert float(kg) / 1000 == pytest.approx(float(row["quantity_t"]), abs=0.05), row


def test_world_is_the_world_total_download_or_the_sum_of_partners_and_shares_add_up(sample_build):
    """The magnet codes' WLD rows are the world-total download; the other codes' are their partner
    sums. The sample's partners add up to its world totals, so every share sums to 100."""
    sources = dict(sample_build.query(
        """SELECT hs8, list_sort(list(DISTINCT world_source)) FROM marts.export_growth_monthly
           WHERE partner_iso3 = 'WLD' GROUP BY hs8"""
    ))
    assert {h for h, s in sources.items() if s == ["world_total"]} == {"85051110", "85051190", "85051900"}
    assert all(s == ["sum_of_partners"] for h, s in sources.items() if not h.startswith("8505"))
    world_file = dict(sample_build.query(
        """SELECT r.period_start, sum(r.quantity) FROM raw.customs_rows r JOIN raw.customs_loads l USING (load_id)
           WHERE l.dimensions = 'hs8' AND r.hs8 = '85051110' GROUP BY 1"""
    ))
    wld = dict(sample_build.query(
        "SELECT month, quantity_kg FROM marts.export_growth_monthly WHERE partner_iso3 = 'WLD' AND hs8 = '85051110'"
    ))
    assert wld == world_file and len(wld) == 24
    off = sample_build.query(
        """SELECT w.month, w.hs8 FROM marts.export_growth_monthly w
           JOIN (SELECT month, hs8, sum(quantity_kg) AS kg, sum(share_of_world_pct) AS share_sum
                 FROM marts.export_growth_monthly WHERE partner_iso3 <> 'WLD' GROUP BY ALL) p USING (month, hs8)
           WHERE w.partner_iso3 = 'WLD' AND (w.quantity_kg <> p.kg OR abs(p.share_sum - 100) > 1e-6)"""
    )
    assert off == []


def test_no_sample_file_is_rejected_and_every_shape_loads(sample_build):
    assert sample_build.scalar("SELECT count(*) FROM audit.rejected_files") == 0
    shapes = dict(sample_build.query("SELECT dimensions || ' ' || flow, count(*) FROM raw.customs_loads GROUP BY 1"))
    # 24 monthly files and the revised March 2024 by partner; the world, province and regime downloads
    assert shapes == {"hs8,partner exports": 25, "hs8 exports": 1, "hs8,province exports": 1, "hs8,regime exports": 1,
                      "hs8,partner imports": 1}


def test_provinces_and_regimes_add_up_to_the_world_total(sample_build):
    for table in ("export_growth_by_province", "export_growth_by_regime"):
        off = sample_build.query(
            f"""SELECT b.month, b.hs8, sum(b.quantity_kg), any_value(w.quantity_kg), sum(b.share_of_world_pct)
                FROM marts.{table} b JOIN marts.export_growth_monthly w
                  ON w.month = b.month AND w.hs8 = b.hs8 AND w.partner_iso3 = 'WLD'
                GROUP BY ALL HAVING sum(b.quantity_kg) <> any_value(w.quantity_kg) OR abs(sum(b.share_of_world_pct) - 100) > 1e-6"""
        )
        assert off == [], table
        assert sample_build.scalar(f"SELECT count(*) FROM marts.{table} WHERE hs8 = '85051110'") >= 24 * 5
    top = sample_build.query(
        """SELECT province_name_en, province_name_zh FROM marts.export_growth_by_province
           WHERE hs8 = '85051110' AND month = DATE '2025-06-01' ORDER BY quantity_kg DESC LIMIT 1"""
    )
    assert top == [("Zhejiang", "浙江省")]
    mom = sample_build.query(
        """SELECT j.quantity_kg, m.quantity_kg, j.mom_pct FROM marts.export_growth_by_province j
           JOIN marts.export_growth_by_province m USING (hs8, province_code)
           WHERE j.hs8 = '85051110' AND j.province_code = '33' AND j.month = DATE '2025-06-01' AND m.month = DATE '2025-05-01'"""
    )[0]
    assert mom[2] == pytest.approx(100 * (float(mom[0]) / float(mom[1]) - 1))


def test_rare_earth_imports_match_the_published_import_figures(sample_build):
    with (SEEDS_DIR / "published_figures.csv").open() as handle:
        published = [r for r in csv.DictReader(handle) if r["flow"] == "imports" and r["reporter"] == "CHN"
                     and r["period_start"] == r["period_end"] and r["evidence"] == "quoted"]
    assert len(published) >= 5
    for row in published:
        kg = sample_build.scalar(
            "SELECT quantity_kg FROM marts.import_growth_monthly WHERE hs8 = $h AND partner_iso3 = $p "
            "AND month = CAST($m || '-01' AS DATE)",
            {"h": row["hs_scope"], "p": row["partner"], "m": row["period_start"]},
        )
        assert float(kg) / 1000 == pytest.approx(float(row["quantity_t"]), abs=0.05), row
    may = dict(sample_build.query(
        """SELECT partner_iso3, share_of_world_pct FROM marts.import_growth_monthly
           WHERE hs8 = '28469019' AND month = DATE '2025-05-01'"""
    ))
    assert max((s, p) for p, s in may.items() if p != "WLD")[1] == "MMR" and may["WLD"] == 100
    assert sample_build.scalar("SELECT count(*) FROM marts.fct_imports_monthly") == sample_build.scalar(
        "SELECT count(*) FROM raw.customs_rows WHERE flow = 'imports'")


def test_year_to_date(sample_build):
    ytd, ytd_yoy = growth(sample_build, "2025-06-01", "WLD")[3:5]
    assert float(ytd) == 22_320_000  # 6357 + 3800 + 5109 + 2628 + 1238 + 3188 t
    assert round(ytd_yoy, 1) == -18.9  # published first-half change


def test_unit_values_and_lineage(sample_build):
    uv = growth(sample_build, "2025-06-01", "WLD")[6]
    assert 45 <= uv <= 60
    lineage = sample_build.query(
        """SELECT f.load_id, l.file_path, l.file_sha256, r.row_number
           FROM marts.fct_exports_monthly f
           JOIN raw.customs_loads l USING (load_id)
           JOIN raw.customs_rows r ON r.load_id = f.load_id AND r.hs8 = f.hs8 AND r.partner_code = f.partner_code
           WHERE f.month = DATE '2025-06-01' AND f.hs8 = '85051110' AND f.partner_iso3 = 'USA'"""
    )
    assert len(lineage) == 1
    load_id, path, sha, row_number = lineage[0]
    assert path == "exports/gacc_exports_202506.csv" and len(sha) == 64 and row_number >= 1


def test_both_header_languages_in_the_sample(sample_build):
    languages = dict(sample_build.query("SELECT header_language, count(*) FROM raw.customs_loads GROUP BY 1"))
    assert languages == {"zh": 14, "en": 15}  # 12 + 12 monthly files; world, province (zh), regime, imports (en); March 2024 revised (en)
    assert sample_build.scalar("SELECT count(*) FROM raw.customs_rows") == sample_build.scalar(
        "SELECT sum(row_count) FROM raw.customs_loads"
    )


def test_another_process_can_query_the_served_file(sample_build):
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True);"
        "print(c.execute(\"select round(quantity_kg/1000) from marts.export_growth_monthly "
        "where hs8='85051110' and partner_iso3='WLD' and month=date '2025-06-01'\").fetchone()[0])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(sample_build.warehouse)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3188.0"


def test_served_file_uses_a_portable_storage_version(sample_build):
    tags = sample_build.scalar("SELECT tags FROM duckdb_databases() WHERE database_name = 'warehouse'")
    # written with STORAGE_VERSION 'v1.1.0'; DuckDB reports the format's first release, v1.0.0+
    # (readers need 1.1.0+ for the column comments: `make compat` checks real old releases)
    assert tags["storage_version"] in ("v1.0.0+", "v1.1.0+")


def test_report_draws_provinces_and_rare_earth_compound_imports(sample_build, tmp_path):
    import duckdb

    from dagster_project.lib.serving.chart_breakdowns import OTHER, load_compound_imports, load_provinces
    from dagster_project.lib.serving.charts import render_report

    con = duckdb.connect(str(sample_build.warehouse), read_only=True)
    try:
        provinces, imports = load_provinces(con, "85051110"), load_compound_imports(con)
        files = render_report(con, tmp_path / "report")
    finally:
        con.close()
    assert len(provinces.months) == 24 and list(provinces.stacks)[:3] == ["Zhejiang", "Jiangxi", "Inner Mongolia"]
    june = provinces.months.index(dt.date(2025, 6, 1))
    assert sum(s[june] for s in provinces.stacks.values()) == pytest.approx(3188.0)  # the world total
    assert list(imports.stacks)[0] == "Myanmar" and OTHER not in imports.stacks
    for png in (files.provinces_png, files.imports_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    page = files.html.read_text(encoding="utf-8")
    assert '<img src="provinces_85051110.png"' in page and '<img src="imports_2846.png"' in page
