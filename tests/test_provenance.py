"""Which figures are published: the magnet view says so per row, and the charts mark them."""
from __future__ import annotations

from datetime import date

import duckdb

from dagster_project.lib.serving.chart_data import load_series


def test_view_marks_quoted_figures_published_and_the_rest_synthetic(sample_build):
    rows = {(m, p): (q, prov, src) for m, p, q, prov, src in sample_build.query(
        "select month_label, partner_iso3, quantity_t, provenance, provenance_source from marts.v_magnet_exports_by_partner")}
    assert rows[("2025-06", "WLD")][1:] == ("published", rows[("2025-06", "WLD")][2]) and "Reuters" in rows[("2025-06", "WLD")][2]
    assert rows[("2025-05", "USA")][1] == "published"
    assert rows[("2025-03", "WLD")][1:] == ("synthetic", None)  # no release covers March 2025
    assert rows[("2024-05", "WLD")][1] == "synthetic"  # derived from a growth rate, not quoted
    # published exactly where a quoted monthly figure of the seed matches within 0.05 t
    quoted = {(p, partner) for p, partner, q in sample_build.query(
        """select period_start, partner, quantity_t from reference.published_figures
           where evidence = 'quoted' and flow = 'exports' and reporter = 'CHN' and hs_scope = '85051110'
             and period_start = period_end and quantity_t is not null""")
        if (p, partner) in rows and abs(float(rows[(p, partner)][0]) - q) <= 0.05}
    assert {k for k, v in rows.items() if v[1] == "published"} == quoted and len(quoted) >= 30


def test_chart_series_carry_the_published_flags(sample_build):
    con = duckdb.connect(str(sample_build.warehouse), read_only=True)
    months, series = load_series(con, "85051110", ("USA",))
    con.close()
    june, march = months.index(date(2025, 6, 1)), months.index(date(2025, 3, 1))
    assert series["WLD"].published[june] and not series["WLD"].published[march]
    assert series["USA"].published[june]
