"""The headline series analysts ask for first: 85051110 to the world and to the US."""

from __future__ import annotations

import duckdb

from dagster_project.lib.text_tables import markdown_table, text_table
from dagster_project.lib.warehouse.database import table_exists

HEADLINE_HS8 = "85051110"

# From growth_table_for's table; the latest month found among the code's own rows by a window.
_SQL = """
with series as (
    select month, partner_iso3, quantity_kg, mom_pct, yoy_pct,
           max(month) filter (where partner_iso3 = 'WLD') over () as last_month
    from {table}
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


GROWTH_TABLE = "marts.export_growth_monthly"
# The same rows for the codes under the rare-earth headings (dbt model export_growth_rare_earths).
SMALL_GROWTH_TABLE = "marts.export_growth_rare_earths"


def growth_table_for(con: duckdb.DuckDBPyConnection, hs8: str) -> str:
    """The table to read one code's growth rows from: the small table when it holds the code.

    The growth table has no order by code, so a query for one code reads all of it (51M rows at
    the national size, 1.6 s cold). A warehouse built before the small table existed, or a code
    outside its headings, reads the growth table itself.
    """
    if table_exists(con, *SMALL_GROWTH_TABLE.split(".")) and con.execute(f"SELECT count(*) > 0 FROM {SMALL_GROWTH_TABLE} WHERE hs8 = $h", {"h": hs8}).fetchone()[0]:
        return SMALL_GROWTH_TABLE
    return GROWTH_TABLE


def headline_rows(con: duckdb.DuckDBPyConnection, months: int = 12) -> list[tuple]:
    """The last `months` months of 85051110 to the world and the US."""
    sql = _SQL.replace("{table}", growth_table_for(con, HEADLINE_HS8))
    return con.execute(sql, {"hs8": HEADLINE_HS8, "months": months}).fetchall()


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
