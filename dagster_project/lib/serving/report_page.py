"""The analyst report's one HTML page: the two charts and a table of the latest months.

Pure library code. The page carries the data's as-of month, never a generation timestamp,
so the same data gives the same bytes.
"""

from __future__ import annotations

import html
from datetime import date

from dagster_project.lib.months import month_key
from dagster_project.lib.serving.chart_breakdowns import IMPORTS_PNG, imports_title, provinces_png_name, provinces_title
from dagster_project.lib.serving.chart_data import (
    SOURCE_TABLE,
    WORLD,
    Series,
    in_control_window,
    month_name,
    partners_title,
    world_title,
)

TABLE_MONTHS = 12

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 1.5em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.35em; margin-bottom: 0.2em; }
p.meta { color: #555; margin-top: 0; }
img { max-width: 100%; height: auto; border: 1px solid #e5e5e5; margin: 0.6em 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 0.6em 0; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #e5e5e5; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.control td { background: #fdf1d6; }
p.note { color: #555; font-size: 0.9em; }
""".strip()


def world_png_name(hs8: str) -> str:
    return f"world_{hs8}.png"


def partners_png_name(hs8: str) -> str:
    return f"partners_{hs8}.png"


def _fmt_t(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}%"


def report_html(months: list[date], series: dict[str, Series], hs8: str) -> str:
    e = html.escape
    title = f"Rare-earth permanent magnet exports (HS {hs8})"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{e(title)}</h1>",
    ]
    if not months:
        parts += [
            '<p class="meta">Data as of: <strong>no data</strong></p>',
            f"<p>No HS {e(hs8)} export rows found in <code>{e(SOURCE_TABLE)}</code>.</p>",
        ]
    else:
        parts.append(
            f'<p class="meta">Data as of: <strong>{e(month_name(months[-1]))}</strong> '
            f"(latest month of HS {e(hs8)} exports to the world; {len(months)} months from {e(month_name(months[0]))})</p>"
        )
    parts += [
        f'<img src="{world_png_name(hs8)}" alt="{e(world_title(hs8))}: tonnes by month with MoM and YoY %" width="1320">',
        f'<img src="{partners_png_name(hs8)}" alt="{e(partners_title(hs8))}: tonnes by month" width="1320">',
        f'<img src="{provinces_png_name(hs8)}" alt="{e(provinces_title(hs8))}: tonnes by month" width="1320">',
        f'<img src="{IMPORTS_PNG}" alt="{e(imports_title())}: tonnes by month" width="1320">',
    ]
    if months:
        world, usa = series[WORLD], series.get("USA")
        first = max(0, len(months) - TABLE_MONTHS)
        parts += [
            f"<h2>Latest {len(months) - first} months</h2>",
            "<table>",
            "<thead><tr><th>Month</th><th>World (t)</th><th>MoM</th><th>YoY</th><th>United States (t)</th></tr></thead>",
            "<tbody>",
        ]
        for i in range(len(months) - 1, first - 1, -1):
            m = months[i]
            cls = ' class="control"' if in_control_window(m) else ""
            parts.append(
                f"<tr{cls}><td>{e(month_key(m))}</td><td>{_fmt_t(world.tonnes[i])}</td>"
                f"<td>{_fmt_pct(world.mom[i])}</td><td>{_fmt_pct(world.yoy[i])}</td>"
                f"<td>{_fmt_t(usa.tonnes[i] if usa else None)}</td></tr>"
            )
        parts += ["</tbody>", "</table>"]
    parts += [
        f'<p class="note">Figures come from <code>{e(SOURCE_TABLE)}</code> (China customs, GACC, '
        f"HS {e(hs8)}; quantities in tonnes = quantity_kg / 1000; MoM and YoY are the mart's "
        "<code>mom_pct</code> and <code>yoy_pct</code>). Shaded months: MOFCOM export controls on seven "
        "medium/heavy rare earths and magnets containing them took effect on 4 April 2025. Filled markers: "
        "figures a GACC release quoted (<code>provenance = 'published'</code> in "
        "<code>marts.v_magnet_exports_by_partner</code>); hollow: synthetic sample figures or figures not "
        "checked against a release.</p>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)
