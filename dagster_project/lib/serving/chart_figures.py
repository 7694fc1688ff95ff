"""The report's two charts, drawn with matplotlib's Agg canvas and saved as PNGs.

Imported only when something is drawn (matplotlib takes ~0.7 s to import).

Determinism: no pyplot (no global backend state), matplotlib's default style regardless of
any user matplotlibrc, fixed figure size and dpi, and PNGs saved with
`metadata={"Software": None}` so the bytes depend only on the data and the matplotlib version.
"""

from __future__ import annotations

import io
import math
from datetime import date
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from dagster_project.lib.files import write_bytes_atomic
from dagster_project.lib.serving.chart_data import (
    CONTROL_LABEL,
    LABELLED_MONTH,
    MONTH_ABBR,
    SOURCE_TABLE,
    WORLD,
    Series,
    in_control_window,
    month_name,
    partners_title,
    world_title,
)

FIGSIZE = (11.0, 7.0)
DPI = 120

_PARTNER_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
_BAR_COLOR = "#4c72b0"
_BAR_COLOR_CONTROL = "#c44e52"
_SHADE_COLOR = "#f2b134"


def _new_figure(**kwargs) -> Figure:
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
            labels.append(f"{MONTH_ABBR[m.month - 1]}\n{m.year}" if first else MONTH_ABBR[m.month - 1])
    ax.set_xticks(ticks, labels)
    ax.set_xlim(-0.6, n - 0.4)


def _control_span(months: list[date]) -> tuple[float, float] | None:
    """x-range of the shaded export-control window, clipped to the calendar; None if outside."""
    inside = [i for i, m in enumerate(months) if in_control_window(m)]
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
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def _source_note(ax, months: list[date]) -> None:
    ax.set_title(f"Source: GACC via {SOURCE_TABLE}; data to {month_name(months[-1])}",
                 loc="right", fontsize=8, color="#666666")


def _published_legend() -> list[Line2D]:
    """The legend lines for the markers: filled = a GACC release quoted the figure, hollow = synthetic."""
    style = {"color": "#333333", "marker": "o", "ms": 6, "lw": 0}
    return [Line2D([], [], mfc="#333333", label="published (quoted GACC release)", **style),
            Line2D([], [], mfc="white", label="synthetic (sample) or unchecked", **style)]


def _no_data_figure(title: str, message: str) -> Figure:
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.set_axis_off()
    fig.suptitle(title, fontsize=13, fontweight="bold")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, color="#555555", transform=ax.transAxes)
    return fig


def _world_figure(months: list[date], world: Series, hs8: str) -> Figure:
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
                f"{month_name(LABELLED_MONTH)}: {value:,.0f} t",
                xy=(i, value), xytext=(0, 6), textcoords="offset points",
                ha="center", va="bottom", fontsize=9.5, fontweight="bold", color="#8b1a1a", zorder=6,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
            )
    if world.published:  # a marker on each bar: filled where published, hollow elsewhere
        shown = [i for i in x if not math.isnan(tonnes[i])]
        top.scatter(shown, [tonnes[i] for i in shown], s=22, zorder=4, edgecolors="#333333", linewidths=1,
                    c=["#333333" if world.published[i] else "white" for i in shown])
        top.legend(handles=_published_legend(), loc="upper left", fontsize=8.5, frameon=False)
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

    fig.suptitle(world_title(hs8), fontsize=13, fontweight="bold")
    return fig


def _partners_figure(months: list[date], series: dict[str, Series], partners: Sequence[str],
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
        color = _PARTNER_COLORS[k % len(_PARTNER_COLORS)]
        ax.plot(x, values, marker="o", ms=4, lw=1.8, color=color, mfc="white", label=label, zorder=3)
        published = [i for i, p in enumerate(series[code].published) if p and not math.isnan(values[i])]
        ax.plot(published, [values[i] for i in published], marker="o", ms=4, lw=0, color=color, zorder=4)
    _shade(ax, span, label=True)
    _thousands(ax)
    ax.set_ylim(0, (peak if peak > 0 else 1) * 1.22)
    ax.set_ylabel("Exports (tonnes)")
    ax.grid(axis="y", color="#dddddd", zorder=0)
    ax.set_axisbelow(True)
    _setup_month_axis(ax, months)
    handles = ax.get_legend_handles_labels()[0] + _published_legend()
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=4,
              fontsize=9, frameon=False)
    ax.set_title("Monthly export quantity to the largest destinations, tonnes", fontsize=10.5, loc="left", color="#333333")
    _source_note(ax, months)
    fig.suptitle(partners_title(hs8), fontsize=13, fontweight="bold")
    return fig


def _save_png(fig: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    write_bytes_atomic(path, buffer.getvalue())


def draw_charts(world_png: Path, partners_png: Path, months: list[date], series: dict[str, Series],
                partners: Sequence[str], names: dict[str, str], hs8: str) -> None:
    """Draw the world chart and the partners chart ("no data" charts without months)."""
    message = f"No data: no HS {hs8} export rows in {SOURCE_TABLE}"
    with matplotlib.style.context("default"), matplotlib.rc_context({"svg.hashsalt": "charts", "figure.dpi": DPI}):
        if months:
            _save_png(_world_figure(months, series[WORLD], hs8), world_png)
            _save_png(_partners_figure(months, series, partners, names, hs8), partners_png)
        else:
            _save_png(_no_data_figure(world_title(hs8), message), world_png)
            _save_png(_no_data_figure(partners_title(hs8), message), partners_png)


# What the breakdown charts (chart_breakdowns.py) draw with: the same canvas, axis and files.
new_figure, no_data_figure, save_png = _new_figure, _no_data_figure, _save_png
setup_month_axis, thousands, PARTNER_COLORS = _setup_month_axis, _thousands, _PARTNER_COLORS
