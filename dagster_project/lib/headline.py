"""The headline series analysts ask for first: 85051110 to the world and to the US."""

from __future__ import annotations

import duckdb

from .reporting import markdown_table, text_table

HEADLINE_HS8 = "85051110"

# One scan of the growth table (no index on hs8: each scan reads 50M rows' codes at the national
# size, 0.27 s), the latest month found among the code's own rows by a window over them.
_SQL = """
with series as (
    select month, partner_iso3, quantity_kg, mom_pct, yoy_pct,
           max(month) filter (where partner_iso3 = 'WLD') over () as last_month
    from marts.export_growth_monthly
    where hs8 = $hs8 and partner_iso3 in ('WLD', 'USA')
)
select
    strftime(month, '%Y-%m') as month,
    max(quantity_kg / 1000) filter (where partner_iso3 = 'WLD') as world_t,
    max(mom_pct) filter (where partner_iso3 = 'WLD') as world_mom,
    max(yoy_pct) filter (where partner_iso3 = 'WLD') as world_yoy,
    max(quantity_kg / 1000) filter (where partner_iso3 = 'USA') as usa_t,
    max(mom_pct) filter (where partner_iso3 = 'USA') as usa_mom,
    max(yoy_pct) filter (where partner_iso3 = 'USA') as usa_yoy
from series
where month > last_month - interval ($months) month
group by month
order by month
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
