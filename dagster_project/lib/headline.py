"""The headline series analysts ask for first: 85051110 to the world and to the US."""

from __future__ import annotations

import duckdb

from .reporting import markdown_table, text_table

HEADLINE_HS8 = "85051110"

_SQL = """
with latest as (
    select max(month) as last_month from marts.export_growth_monthly where hs8 = $hs8 and partner_iso3 = 'WLD'
)
select
    strftime(g.month, '%Y-%m') as month,
    max(g.quantity_kg / 1000) filter (where partner_iso3 = 'WLD') as world_t,
    max(g.mom_pct) filter (where partner_iso3 = 'WLD') as world_mom,
    max(g.yoy_pct) filter (where partner_iso3 = 'WLD') as world_yoy,
    max(g.quantity_kg / 1000) filter (where partner_iso3 = 'USA') as usa_t,
    max(g.mom_pct) filter (where partner_iso3 = 'USA') as usa_mom,
    max(g.yoy_pct) filter (where partner_iso3 = 'USA') as usa_yoy
from marts.export_growth_monthly g, latest
where g.hs8 = $hs8 and g.partner_iso3 in ('WLD', 'USA')
  and g.month > latest.last_month - interval ($months) month
group by g.month
order by g.month
"""

HEADERS = ["month", "world t", "MoM %", "YoY %", "US t", "MoM %", "YoY %"]


def headline_rows(con: duckdb.DuckDBPyConnection, months: int = 12) -> list[tuple]:
    return con.execute(_SQL, {"hs8": HEADLINE_HS8, "months": months}).fetchall()


def _pct(value):
    return None if value is None else f"{value:+.1f}"


def _t(value):
    return None if value is None else f"{float(value):,.1f}"


def _formatted(rows):
    return [(m, _t(w), _pct(wm), _pct(wy), _t(u), _pct(um), _pct(uy)) for m, w, wm, wy, u, um, uy in rows]


def headline_text(rows) -> str:
    title = f"Rare-earth permanent magnet exports (HS {HEADLINE_HS8}), tonnes"
    return title + "\n" + text_table(HEADERS, _formatted(rows))


def headline_markdown(rows) -> str:
    return markdown_table(HEADERS, _formatted(rows))
