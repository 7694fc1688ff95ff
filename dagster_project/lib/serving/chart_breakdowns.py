"""The report's breakdown charts: exports of a code by registration place (province), and
imports of rare-earth compounds (HS 2846) by partner, as stacked monthly bars.

Pure library code: `load_*` read the marts, `draw_breakdown` draws (importing matplotlib only
then). The largest series are drawn by name, the rest summed as "Other", so that a chart stays
legible whatever the number of provinces or partners.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from dagster_project.lib.months import months_between
from dagster_project.lib.warehouse.database import table_exists

PROVINCE_TABLE = "marts.export_growth_by_province"
IMPORTS_TABLE = "marts.fct_imports_monthly"
COMPOUNDS_HEADING = "2846"  # rare-earth compounds (oxides, chlorides, carbonates ...)
SHOWN = 6  # named series; the rest is "Other"
OTHER = "Other"


def provinces_png_name(hs8: str) -> str:
    return f"provinces_{hs8}.png"


IMPORTS_PNG = f"imports_{COMPOUNDS_HEADING}.png"


def provinces_title(hs8: str) -> str:
    return f"China's exports of HS {hs8} by registration place of the exporter"


def imports_title() -> str:
    return f"China's imports of rare-earth compounds (HS {COMPOUNDS_HEADING}) by origin"


@dataclass(frozen=True)
class Breakdown:
    """Stacked series (tonnes per month, 0 where absent), largest first, aligned to `months`."""

    months: list[date]
    stacks: dict[str, list[float]]
    source: str


def _stacked(rows: list[tuple[date, str, float]], source: str) -> Breakdown:
    if not rows:
        return Breakdown([], {}, source)
    months = months_between(min(r[0] for r in rows), max(r[0] for r in rows))
    index = {m: i for i, m in enumerate(months)}
    totals: dict[str, float] = {}
    for _, name, tonnes in rows:
        totals[name] = totals.get(name, 0.0) + tonnes
    ranked = sorted(totals, key=lambda n: (-totals[n], n))
    shown = ranked if len(ranked) <= SHOWN + 1 else ranked[:SHOWN]  # no "Other" of a single series
    stacks = {name: [0.0] * len(months) for name in shown}
    if len(ranked) > len(shown):
        stacks[OTHER] = [0.0] * len(months)
    for month, name, tonnes in rows:
        stacks[name if name in stacks else OTHER][index[month]] += tonnes
    return Breakdown(months, stacks, source)


def load_provinces(con: duckdb.DuckDBPyConnection, hs8: str) -> Breakdown:
    if not table_exists(con, *PROVINCE_TABLE.split(".")):
        return Breakdown([], {}, PROVINCE_TABLE)
    rows = con.execute(
        f"""SELECT month, coalesce(province_name_en, province_code), CAST(quantity_kg AS DOUBLE) / 1000
            FROM {PROVINCE_TABLE} WHERE hs8 = $hs8 AND quantity_kg IS NOT NULL ORDER BY 1, 2""",
        {"hs8": hs8},
    ).fetchall()
    return _stacked(rows, PROVINCE_TABLE)


def load_compound_imports(con: duckdb.DuckDBPyConnection) -> Breakdown:
    if not table_exists(con, *IMPORTS_TABLE.split(".")):
        return Breakdown([], {}, IMPORTS_TABLE)
    rows = con.execute(
        f"""SELECT f.month, coalesce(any_value(p.partner_name_en), f.partner_iso3), sum(CAST(f.quantity_kg AS DOUBLE)) / 1000
            FROM {IMPORTS_TABLE} f LEFT JOIN marts.dim_partner p USING (partner_code)
            WHERE f.hs8 LIKE '{COMPOUNDS_HEADING}%' AND f.quantity_kg IS NOT NULL
            GROUP BY f.month, f.partner_iso3 ORDER BY 1, 2"""
    ).fetchall()
    return _stacked(rows, IMPORTS_TABLE)


def draw_breakdown(path: Path, title: str, subtitle: str, data: Breakdown) -> None:
    """A stacked bar chart of `data` ("no data" chart without months)."""
    import matplotlib.style

    from dagster_project.lib.serving import chart_figures as figures
    from dagster_project.lib.serving.chart_data import month_name

    with matplotlib.style.context("default"), matplotlib.rc_context({"svg.hashsalt": "charts", "figure.dpi": figures.DPI}):
        if not data.months:
            figures.save_png(figures.no_data_figure(title, f"No data: no rows in {data.source}"), path)
            return
        fig = figures.new_figure(layout="constrained")
        ax = fig.add_subplot()
        x = list(range(len(data.months)))
        bottom = [0.0] * len(x)
        for k, (name, values) in enumerate(data.stacks.items()):
            color = "#bbbbbb" if name == OTHER else figures.PARTNER_COLORS[k % len(figures.PARTNER_COLORS)]
            ax.bar(x, values, bottom=bottom, width=0.78, color=color, label=name, zorder=2)
            bottom = [b + v for b, v in zip(bottom, values)]
        figures.thousands(ax)
        ax.set_ylim(0, (max(bottom) if max(bottom) > 0 else 1) * 1.12)
        ax.set_ylabel("Tonnes")
        ax.grid(axis="y", color="#dddddd", zorder=0)
        ax.set_axisbelow(True)
        figures.setup_month_axis(ax, data.months)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=min(len(data.stacks), 7), fontsize=9, frameon=False)
        ax.set_title(subtitle, fontsize=10.5, loc="left", color="#333333")
        ax.text(1.0, 1.01, f"Source: GACC via {data.source}; data to {month_name(data.months[-1])}",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="#666666")
        fig.suptitle(title, fontsize=13, fontweight="bold")
        figures.save_png(fig, path)
