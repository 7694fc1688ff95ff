"""Static charts and a one-page HTML report of rare-earth magnet exports (HS 85051110).

Pure library code (no Dagster imports): `render_report(con, out_dir)` reads
`marts.export_growth_monthly` (and partner names from `marts.dim_partner` when present),
renders two PNGs with matplotlib's Agg canvas and writes `report.html` beside them.

Determinism: no pyplot (no global backend state), matplotlib's default style regardless of
any user matplotlibrc, fixed figure size and dpi, and PNGs saved with
`metadata={"Software": None}` so the bytes depend only on the data and the matplotlib
version. The HTML carries the data's as-of month, never a generation timestamp.

Every file is written to a temporary name in `out_dir` and renamed over the target with
`os.replace`; the PNGs go first, the HTML that references them next, and `report.json` last.

Unchanged inputs are not drawn again: `report.json` records a fingerprint of everything the
files are made from (the rows read, the partner names, this module's source and the
matplotlib / NumPy / Pillow versions) and the SHA-256 of each file written. When the
fingerprint and the files on disk still match it, `render_report` returns without importing
matplotlib (about 0.7 s a build). Any change to the data or the renderer, or a file removed or
edited, draws everything again.
"""

from __future__ import annotations

import hashlib
import html
import importlib.metadata
import json
import math
import os
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import duckdb

from dagster_project.lib.serving.headline import GROWTH_TABLE, growth_table_for

if TYPE_CHECKING:  # matplotlib is imported only when something is drawn
    from matplotlib.figure import Figure

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

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"  # headline, input fingerprint and file hashes: lets unchanged inputs skip drawing


def world_png_name(hs8: str = HS8) -> str:
    return f"world_{hs8}.png"


def partners_png_name(hs8: str = HS8) -> str:
    return f"partners_{hs8}.png"

FIGSIZE = (11.0, 7.0)
DPI = 120
TABLE_MONTHS = 12

_PARTNER_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
_BAR_COLOR = "#4c72b0"
_BAR_COLOR_CONTROL = "#c44e52"
_SHADE_COLOR = "#f2b134"
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class ReportFiles:
    """What `render_report` wrote, and the numbers an asset can put in its metadata."""

    world_png: Path
    partners_png: Path
    html: Path
    headline: dict[str, Any] = field(default_factory=dict)
    rendered: bool = True  # False when the files on disk were already drawn from the same inputs

    @property
    def paths(self) -> list[Path]:
        return [self.world_png, self.partners_png, self.html]


@dataclass
class _Series:
    """One partner's monthly figures aligned to the report's calendar (None = no row)."""

    tonnes: list[float | None]
    mom: list[float | None]
    yoy: list[float | None]


# ---------------------------------------------------------------------------------------
# data


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = $s AND table_name = $t",
            {"s": schema, "t": table},
        ).fetchone()[0]
        or con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() "
            "AND schema_name = $s AND view_name = $t",
            {"s": schema, "t": table},
        ).fetchone()[0]
    )


def _float(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _month_range(first: date, last: date) -> list[date]:
    months, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        months.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def _load(con: duckdb.DuckDBPyConnection, hs8: str, partners: Sequence[str]):
    """Calendar of months with world data, and aligned series per partner (WLD included)."""
    if not _table_exists(con, "marts", "export_growth_monthly"):
        return [], {}
    codes = [WORLD, *partners]
    table = growth_table_for(con, hs8)
    rows = con.execute(
        f"""
        SELECT CAST(month AS DATE), partner_iso3,
               CAST(quantity_kg AS DOUBLE) / 1000.0, CAST(mom_pct AS DOUBLE), CAST(yoy_pct AS DOUBLE)
        FROM {table}
        WHERE hs8 = $hs8 AND partner_iso3 IN (SELECT unnest($codes))
        ORDER BY 1, 2
        """,
        {"hs8": hs8, "codes": codes},
    ).fetchall()
    world_months = [r[0] for r in rows if r[1] == WORLD]
    if not world_months:
        return [], {}
    months = _month_range(min(world_months), max(world_months))
    index = {m: i for i, m in enumerate(months)}
    series = {c: _Series([None] * len(months), [None] * len(months), [None] * len(months)) for c in codes}
    for month, code, tonnes, mom, yoy in rows:
        i = index.get(date(month.year, month.month, 1))
        if i is None:  # partner rows outside the world's range are not charted
            continue
        s = series[code]
        s.tonnes[i], s.mom[i], s.yoy[i] = _float(tonnes), _float(mom), _float(yoy)
    return months, series


def _partner_names(con: duckdb.DuckDBPyConnection, codes: Sequence[str]) -> dict[str, str]:
    if not _table_exists(con, "marts", "dim_partner"):
        return {}
    rows = con.execute(
        "SELECT partner_iso3, min(partner_name_en) FROM marts.dim_partner "
        "WHERE partner_iso3 IN (SELECT unnest($codes)) AND partner_name_en IS NOT NULL GROUP BY 1",
        {"codes": list(codes)},
    ).fetchall()
    return {code: name for code, name in rows}


# ---------------------------------------------------------------------------------------
# formatting


def _month_label(m: date) -> str:
    return f"{_MONTH_ABBR[m.month - 1]} {m.year}"


def _fmt_t(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}%"


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# ---------------------------------------------------------------------------------------
# drawing


def _new_figure(**kwargs) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _nan(values: Iterable[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _setup_month_axis(ax, months: list[date]) -> None:
    n = len(months)
    step = 1 if n <= 30 else 3 if n <= 72 else 12
    ticks = [i for i, m in enumerate(months) if (m.month - 1) % step == 0 or (step == 12 and i == 0)]
    labels = []
    for i in ticks:
        m = months[i]
        first = i == ticks[0] or m.month == 1
        if step == 12:
            labels.append(str(m.year))
        else:
            labels.append(f"{_MONTH_ABBR[m.month - 1]}\n{m.year}" if first else _MONTH_ABBR[m.month - 1])
    ax.set_xticks(ticks, labels)
    ax.set_xlim(-0.6, n - 0.4)


def _control_span(months: list[date]) -> tuple[float, float] | None:
    """x-range of the shaded export-control window, clipped to the calendar; None if outside."""
    inside = [i for i, m in enumerate(months) if CONTROL_FIRST_MONTH <= m <= CONTROL_LAST_MONTH]
    if not inside:
        return None
    return inside[0] - 0.5, inside[-1] + 0.5


def _shade(ax, span: tuple[float, float] | None, label: bool) -> None:
    if span is None:
        return
    ax.axvspan(*span, color=_SHADE_COLOR, alpha=0.22, lw=0, zorder=0)
    if label:
        ax.text(
            (span[0] + span[1]) / 2, 0.975, CONTROL_LABEL,
            transform=ax.get_xaxis_transform(), ha="center", va="top",
            fontsize=9.5, color="#7a5200", fontweight="bold",
            bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": _SHADE_COLOR, "alpha": 0.9},
            zorder=5,
        )


def _thousands(ax) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def _source_note(ax, months: list[date]) -> None:
    ax.set_title(f"Source: GACC via {SOURCE_TABLE}; data to {_month_label(months[-1])}",
                 loc="right", fontsize=8, color="#666666")


def _save_png(fig: Figure, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _no_data_figure(title: str, message: str) -> Figure:
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.set_axis_off()
    fig.suptitle(title, fontsize=13, fontweight="bold")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, color="#555555", transform=ax.transAxes)
    return fig


def _world_title(hs8: str) -> str:
    return f"China's exports of rare-earth permanent magnets (HS {hs8}) to the world"


def _partners_title(hs8: str) -> str:
    return f"China's exports of rare-earth permanent magnets (HS {hs8}) by destination"


def _world_figure(months: list[date], world: _Series, hs8: str) -> Figure:
    from matplotlib.ticker import FuncFormatter

    fig = _new_figure(layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.1, 1])
    x = list(range(len(months)))
    span = _control_span(months)
    in_control = [span is not None and span[0] < i < span[1] for i in x]

    tonnes = _nan(world.tonnes)
    top.bar(x, tonnes, width=0.78, color=[_BAR_COLOR_CONTROL if c else _BAR_COLOR for c in in_control], zorder=2)
    _shade(top, span, label=True)
    _thousands(top)
    top.set_ylabel("Exports (tonnes)")
    top.grid(axis="y", color="#dddddd", zorder=0)
    top.set_axisbelow(True)
    finite = [v for v in tonnes if not math.isnan(v)]
    top.set_ylim(0, (max(finite) if finite and max(finite) > 0 else 1) * 1.22)
    if LABELLED_MONTH in months:
        i = months.index(LABELLED_MONTH)
        value = world.tonnes[i]
        if value is not None:
            top.annotate(
                f"{_month_label(LABELLED_MONTH)}: {value:,.0f} t",
                xy=(i, value), xytext=(0, 6), textcoords="offset points",
                ha="center", va="bottom", fontsize=9.5, fontweight="bold", color="#8b1a1a", zorder=6,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
            )
    top.set_title("Monthly export quantity, tonnes", fontsize=10.5, loc="left", color="#333333")
    _source_note(top, months)

    bottom.axhline(0, color="#888888", lw=0.8, zorder=1)
    bottom.plot(x, _nan(world.mom), marker="o", ms=3.5, lw=1.3, color="#7f7f7f", label="MoM %", zorder=3)
    bottom.plot(x, _nan(world.yoy), marker="s", ms=3.5, lw=1.8, color="#dd8452", label="YoY %", zorder=3)
    _shade(bottom, span, label=False)
    bottom.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:+.0f}%" if v else "0%"))
    bottom.set_ylabel("Change (%)")
    bottom.grid(axis="y", color="#dddddd", zorder=0)
    bottom.legend(loc="upper left", fontsize=9, frameon=False, ncols=2)
    bottom.set_title("Growth in quantity: month on month and year on year", fontsize=10.5, loc="left", color="#333333")
    _setup_month_axis(bottom, months)

    fig.suptitle(_world_title(hs8), fontsize=13, fontweight="bold")
    return fig


def _partners_figure(months: list[date], series: dict[str, _Series], partners: Sequence[str],
                     names: dict[str, str], hs8: str) -> Figure:
    fig = _new_figure(layout="constrained")
    ax = fig.add_subplot()
    x = list(range(len(months)))
    span = _control_span(months)
    peak = 0.0
    for k, code in enumerate(partners):
        values = _nan(series[code].tonnes)
        finite = [v for v in values if not math.isnan(v)]
        peak = max([peak, *finite])
        label = f"{names[code]} ({code})" if code in names else code
        ax.plot(x, values, marker="o", ms=3.5, lw=1.8, color=_PARTNER_COLORS[k % len(_PARTNER_COLORS)], label=label, zorder=3)
    _shade(ax, span, label=True)
    _thousands(ax)
    ax.set_ylim(0, (peak if peak > 0 else 1) * 1.22)
    ax.set_ylabel("Exports (tonnes)")
    ax.grid(axis="y", color="#dddddd", zorder=0)
    ax.set_axisbelow(True)
    _setup_month_axis(ax, months)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=min(len(partners), 6), fontsize=9, frameon=False)
    ax.set_title("Monthly export quantity to the largest destinations, tonnes", fontsize=10.5, loc="left", color="#333333")
    _source_note(ax, months)
    fig.suptitle(_partners_title(hs8), fontsize=13, fontweight="bold")
    return fig


# ---------------------------------------------------------------------------------------
# headline + HTML


def _headline(months: list[date], series: dict[str, _Series], hs8: str) -> dict[str, Any]:
    if not months:
        return {"hs8": hs8, "as_of": None, "months": 0}
    world, usa = series[WORLD], series.get("USA")
    last = len(months) - 1
    out: dict[str, Any] = {
        "hs8": hs8,
        "as_of": months[-1].strftime("%Y-%m"),
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
    window = [(world.tonnes[i], i) for i, m in enumerate(months)
              if CONTROL_FIRST_MONTH <= m <= CONTROL_LAST_MONTH and world.tonnes[i] is not None]
    if window:
        _, i = min(window)
        out["control_trough_month"] = months[i].strftime("%Y-%m")
        out["control_trough_world_t"] = _round(world.tonnes[i])
        out["control_trough_world_yoy_pct"] = _round(world.yoy[i])
    return out


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


def _html(months: list[date], series: dict[str, _Series], hs8: str) -> str:
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
            f'<p class="meta">Data as of: <strong>{e(_month_label(months[-1]))}</strong> '
            f"(latest month of HS {e(hs8)} exports to the world; {len(months)} months from {e(_month_label(months[0]))})</p>"
        )
    parts += [
        f'<img src="{world_png_name(hs8)}" alt="{e(_world_title(hs8))}: tonnes by month with MoM and YoY %" width="1320">',
        f'<img src="{partners_png_name(hs8)}" alt="{e(_partners_title(hs8))}: tonnes by month" width="1320">',
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
            cls = ' class="control"' if CONTROL_FIRST_MONTH <= m <= CONTROL_LAST_MONTH else ""
            parts.append(
                f"<tr{cls}><td>{e(m.strftime('%Y-%m'))}</td><td>{_fmt_t(world.tonnes[i])}</td>"
                f"<td>{_fmt_pct(world.mom[i])}</td><td>{_fmt_pct(world.yoy[i])}</td>"
                f"<td>{_fmt_t(usa.tonnes[i] if usa else None)}</td></tr>"
            )
        parts += ["</tbody>", "</table>"]
    parts += [
        f'<p class="note">Figures come from <code>{e(SOURCE_TABLE)}</code> (China customs, GACC, '
        f"HS {e(hs8)}; quantities in tonnes = quantity_kg / 1000; MoM and YoY are the mart's "
        "<code>mom_pct</code> and <code>yoy_pct</code>). Shaded months: MOFCOM export controls on seven "
        "medium/heavy rare earths and magnets containing them took effect on 4 April 2025.</p>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------
# skipping unchanged inputs


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _inputs_fingerprint(hs8: str, partners: Sequence[str], months: list[date], series: dict[str, _Series],
                        names: dict[str, str]) -> str:
    """Everything the three files are made from: the data read and the code drawing it."""
    digest = hashlib.sha256()
    digest.update(Path(__file__).read_bytes())
    digest.update(json.dumps(
        {
            "renderer": {dist: _version(dist) for dist in ("matplotlib", "numpy", "pillow")},
            "hs8": hs8,
            "partners": list(partners),
            "months": [m.isoformat() for m in months],
            # repr keeps every bit of a float; None stays None
            "series": {code: [[repr(v) for v in values] for values in (s.tonnes, s.mom, s.yoy)]
                       for code, s in sorted(series.items())},
            "names": dict(sorted(names.items())),
        },
        sort_keys=True,
    ).encode("utf-8"))
    return digest.hexdigest()


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _up_to_date(files: ReportFiles, fingerprint: str) -> bool:
    try:
        recorded = json.loads((files.html.parent / REPORT_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict) or recorded.get("inputs_sha256") != fingerprint:
        return False
    hashes = recorded.get("files")
    return isinstance(hashes, dict) and all(
        hashes.get(path.name) is not None and hashes.get(path.name) == _sha256(path) for path in files.paths
    )


# ---------------------------------------------------------------------------------------
# entry point


def render_report(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    *,
    hs8: str = HS8,
    partners: Sequence[str] = PARTNERS,
    reuse: bool = True,
) -> ReportFiles:
    """Render `world_<hs8>.png`, `partners_<hs8>.png` and `report.html` into `out_dir`.

    Reads only; works on a read-only connection. With no rows for `hs8` (or no
    `marts.export_growth_monthly` at all) it writes "no data" charts and a report saying so.
    With `reuse` (the default), files already drawn from the same inputs are kept as they are
    (`rendered=False` in the result); see the module docstring.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    partners = tuple(p for p in partners if p != WORLD)
    months, series = _load(con, hs8, partners)
    names = _partner_names(con, partners) if months else {}

    files = ReportFiles(
        world_png=out_dir / world_png_name(hs8),
        partners_png=out_dir / partners_png_name(hs8),
        html=out_dir / REPORT_HTML,
        headline=_headline(months, series, hs8),
    )
    fingerprint = _inputs_fingerprint(hs8, partners, months, series, names)
    if reuse and _up_to_date(files, fingerprint):
        return ReportFiles(files.world_png, files.partners_png, files.html, files.headline, rendered=False)

    import matplotlib
    import matplotlib.style

    message = f"No data: no HS {hs8} export rows in {SOURCE_TABLE}"
    with matplotlib.style.context("default"), matplotlib.rc_context({"svg.hashsalt": "charts", "figure.dpi": DPI}):
        for path, build in (
            (files.world_png, lambda: _world_figure(months, series[WORLD], hs8) if months else _no_data_figure(_world_title(hs8), message)),
            (files.partners_png, lambda: _partners_figure(months, series, partners, names, hs8) if months else _no_data_figure(_partners_title(hs8), message)),
        ):
            _save_png(build(), path)

    _write_text(files.html, _html(months, series, hs8))
    record = {
        "inputs_sha256": fingerprint,
        "files": {path.name: _sha256(path) for path in files.paths},
        "headline": files.headline,
    }
    _write_text(out_dir / REPORT_JSON, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return files
