"""The mirror chart: China-reported against partner-reported magnet trade (HS 850511), tonnes per
month, for the United States, the European Union and Japan (marts.mirror_trade_monthly).

The EU panel sums the EU-27 members that report in the loaded Comtrade files and says which they
are: the sample holds Germany only, and a panel called "EU" over one member would mislead.
Pure library code (no Dagster imports); matplotlib is imported only to draw.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from dagster_project.lib.files import write_bytes_atomic
from dagster_project.lib.warehouse.database import table_exists

HS6 = "850511"
MIRROR_PNG = f"mirror_{HS6}.png"
PANELS = (("USA", "United States"), ("EU", "European Union"), ("JPN", "Japan"))


@dataclass
class Panel:
    title: str
    months: list[date]
    china_t: list[float | None]
    partner_t: list[float | None]


def load_panels(con: duckdb.DuckDBPyConnection, hs6: str = HS6) -> list[Panel]:
    """A panel per group, each month with both figures; a group without rows has empty lists."""
    if not table_exists(con, "marts", "mirror_trade_monthly"):
        return [Panel(title, [], [], []) for _, title in PANELS]
    rows = con.execute(
        """SELECT CASE WHEN c.is_eu27 THEN 'EU' ELSE m.partner_iso3 END AS grp,
                  CAST(m.month AS DATE), sum(m.china_reported_kg) / 1000.0, sum(m.partner_reported_kg) / 1000.0,
                  string_agg(DISTINCT m.partner_iso3, ', ' ORDER BY m.partner_iso3)
           FROM marts.mirror_trade_monthly m LEFT JOIN marts.dim_country c USING (partner_iso3)
           WHERE m.hs6 = $hs6
           GROUP BY 1, 2 ORDER BY 1, 2""",
        {"hs6": hs6},
    ).fetchall()
    panels = []
    for code, title in PANELS:
        mine = [r for r in rows if r[0] == code]
        if code == "EU":
            members = sorted({m for r in mine for m in r[4].split(", ")})
            title = (f"{title} ({len(members)} of 27 members report: {', '.join(members)})" if members
                     else f"{title} (no member's files loaded)")
        panels.append(Panel(title, [r[1] for r in mine], [float(r[2]) for r in mine], [float(r[3]) for r in mine]))
    return panels


def draw_mirror_chart(panels: list[Panel], path: Path, hs6: str = HS6) -> None:
    """Three panels stacked; China's side solid, the partner's dashed. Deterministic bytes."""
    import matplotlib
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"), matplotlib.rc_context({"figure.dpi": 120}):
        fig = Figure(figsize=(11.0, 10.0), dpi=120, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(panels), 1, sharex=False)
        for ax, panel in zip(axes, panels):
            ax.set_title(panel.title, fontsize=10.5, loc="left")
            if not panel.months:
                ax.text(0.5, 0.5, "no mirror rows", ha="center", va="center", transform=ax.transAxes, color="#777777")
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            x = list(range(len(panel.months)))
            nan = lambda values: [math.nan if v is None else v for v in values]  # noqa: E731
            ax.plot(x, nan(panel.china_t), marker="o", ms=3, lw=1.8, color="#d62728", label="China-reported exports (GACC, FOB)")
            ax.plot(x, nan(panel.partner_t), marker="s", ms=3, lw=1.8, ls="--", color="#1f77b4",
                    label="partner-reported imports from China (UN Comtrade, CIF)")
            ax.set_xticks(x[::3], [f"{m:%Y-%m}" for m in panel.months[::3]], fontsize=8)
            ax.set_ylabel("tonnes")
            ax.set_ylim(bottom=0)
            ax.grid(axis="y", color="#dddddd")
            ax.legend(fontsize=8, frameon=False, loc="upper left")
        fig.suptitle(f"Mirror statistics: China-reported against partner-reported trade in magnets (HS {hs6})",
                     fontsize=12.5, fontweight="bold")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120, metadata={"Software": None})
    write_bytes_atomic(path, buffer.getvalue())
