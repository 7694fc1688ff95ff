"""The figures the analyst report shows, read from the growth mart: one series per partner.

Pure library code (no Dagster imports, no matplotlib).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Sequence

import duckdb

from dagster_project.lib.months import first_of_month, month_key, months_between
from dagster_project.lib.serving.headline import GROWTH_TABLE, growth_table_for
from dagster_project.lib.warehouse.database import table_exists

HS8 = "85051110"
WORLD = "WLD"
PARTNERS: tuple[str, ...] = ("USA", "DEU", "KOR", "JPN", "VNM", "IND")
# The charts name the growth table; they read its rows from growth_table_for's table, which
# may be the small copy of the rare-earth headings' rows.
SOURCE_TABLE = GROWTH_TABLE

# MOFCOM/GACC Announcement No. 18 of 2025: export licensing for seven medium/heavy rare
# earths (Sm, Gd, Tb, Dy, Lu, Sc, Y) and magnets containing them, effective 4 April 2025.
# The shaded window covers the months in which licences were the binding constraint.
CONTROL_FIRST_MONTH = date(2025, 4, 1)
CONTROL_LAST_MONTH = date(2025, 6, 1)
CONTROL_LABEL = "export controls (Apr 2025)"
LABELLED_MONTH = date(2025, 6, 1)

# English whatever the process's locale (strftime's %b is not): the files depend on the data only.
MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_name(m: date) -> str:
    """'Jun 2025'."""
    return f"{MONTH_ABBR[m.month - 1]} {m.year}"


def in_control_window(m: date) -> bool:
    return CONTROL_FIRST_MONTH <= m <= CONTROL_LAST_MONTH


def world_title(hs8: str) -> str:
    return f"China's exports of rare-earth permanent magnets (HS {hs8}) to the world"


def partners_title(hs8: str) -> str:
    return f"China's exports of rare-earth permanent magnets (HS {hs8}) by destination"


@dataclass
class Series:
    """One partner's monthly figures aligned to the report's calendar (None = no row)."""

    tonnes: list[float | None]
    mom: list[float | None]
    yoy: list[float | None]
    # True where a GACC release quoted the figure (the view's provenance = 'published')
    published: list[bool] = field(default_factory=list)


def _float(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def load_series(con: duckdb.DuckDBPyConnection, hs8: str, partners: Sequence[str]) -> tuple[list[date], dict[str, Series]]:
    """Calendar of months with world data, and aligned series per partner (WLD included)."""
    if not table_exists(con, *GROWTH_TABLE.split(".")):
        return [], {}
    codes = [WORLD, *partners]
    rows = con.execute(
        f"""
        SELECT CAST(month AS DATE), partner_iso3,
               CAST(quantity_kg AS DOUBLE) / 1000.0, CAST(mom_pct AS DOUBLE), CAST(yoy_pct AS DOUBLE)
        FROM {growth_table_for(con, hs8)}
        WHERE hs8 = $hs8 AND partner_iso3 IN (SELECT unnest($codes))
        ORDER BY 1, 2
        """,
        {"hs8": hs8, "codes": codes},
    ).fetchall()
    world_months = [r[0] for r in rows if r[1] == WORLD]
    if not world_months:
        return [], {}
    months = months_between(min(world_months), max(world_months))
    index = {m: i for i, m in enumerate(months)}
    series = {c: Series([None] * len(months), [None] * len(months), [None] * len(months)) for c in codes}
    for month, code, tonnes, mom, yoy in rows:
        i = index.get(first_of_month(month))
        if i is None:  # partner rows outside the world's range are not charted
            continue
        s = series[code]
        s.tonnes[i], s.mom[i], s.yoy[i] = _float(tonnes), _float(mom), _float(yoy)
    published = published_points(con, hs8)
    for code, s in series.items():
        s.published = [(m, code) in published for m in months]
    return months, series


# The view that says which figures are published (the rule lives there, in one place): 85051110 only.
PROVENANCE_VIEW = "marts.v_magnet_exports_by_partner"


def published_points(con: duckdb.DuckDBPyConnection, hs8: str) -> set[tuple[date, str]]:
    """(month, partner_iso3) of the figures a GACC release quoted; empty where nothing says so."""
    schema, view = PROVENANCE_VIEW.split(".")
    exists = con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = $s AND view_name = $v",
                         {"s": schema, "v": view}).fetchone()[0]
    if hs8 != HS8 or not exists:
        return set()
    rows = con.execute(f"SELECT CAST(month AS DATE), partner_iso3 FROM {PROVENANCE_VIEW} WHERE provenance = 'published'")
    return {(first_of_month(m), code) for m, code in rows.fetchall()}


def partner_names(con: duckdb.DuckDBPyConnection, codes: Sequence[str]) -> dict[str, str]:
    if table_exists(con, "marts", "dim_country"):  # one row per ISO3
        rows = con.execute(
            "SELECT partner_iso3, country_name_en FROM marts.dim_country WHERE partner_iso3 IN (SELECT unnest($codes))",
            {"codes": list(codes)},
        ).fetchall()
        return {code: name for code, name in rows if name is not None}
    if not table_exists(con, "marts", "dim_partner"):
        return {}
    rows = con.execute(
        "SELECT partner_iso3, min(partner_name_en) FROM marts.dim_partner "
        "WHERE partner_iso3 IN (SELECT unnest($codes)) AND partner_name_en IS NOT NULL GROUP BY 1",
        {"codes": list(codes)},
    ).fetchall()
    return {code: name for code, name in rows}


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def headline(months: list[date], series: dict[str, Series], hs8: str) -> dict[str, Any]:
    """The latest month's figures, June 2025 and the export-control trough (asset metadata)."""
    if not months:
        return {"hs8": hs8, "as_of": None, "months": 0}
    world, usa = series[WORLD], series.get("USA")
    last = len(months) - 1
    out: dict[str, Any] = {
        "hs8": hs8,
        "as_of": month_key(months[-1]),
        "months": len(months),
        "world_t": _round(world.tonnes[last]),
        "world_mom_pct": _round(world.mom[last]),
        "world_yoy_pct": _round(world.yoy[last]),
        "usa_t": _round(usa.tonnes[last]) if usa else None,
        "usa_yoy_pct": _round(usa.yoy[last]) if usa else None,
    }
    if LABELLED_MONTH in months:
        i = months.index(LABELLED_MONTH)
        out["jun_2025_world_t"] = _round(world.tonnes[i])
        out["jun_2025_world_yoy_pct"] = _round(world.yoy[i])
    window = [(world.tonnes[i], i) for i, m in enumerate(months) if in_control_window(m) and world.tonnes[i] is not None]
    if window:
        _, i = min(window)
        out["control_trough_month"] = month_key(months[i])
        out["control_trough_world_t"] = _round(world.tonnes[i])
        out["control_trough_world_yoy_pct"] = _round(world.yoy[i])
    return out
