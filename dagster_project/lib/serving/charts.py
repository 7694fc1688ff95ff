"""Static charts and a one-page HTML report of rare-earth magnet exports (HS 85051110).

Pure library code (no Dagster imports): `render_report(con, out_dir)` reads the growth mart
(chart_data), draws two PNGs (chart_figures) and the breakdowns by province and of the
rare-earth compound imports (chart_breakdowns), and writes `report.html` (report_page) and
`report.json` beside them. Whether to draw at all is the caller's decision (the asset reads
Dagster's record); `kept_report` says whether the files on disk are still those drawn, and
`renderer_version` names the code that draws them.

Every file is written to a temporary name in `out_dir` and renamed over the target; the
PNGs go first, the HTML that references them next, and `report.json` last. Importing this
module does not import matplotlib (~0.7 s): only drawing does.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import duckdb

from dagster_project.lib.files import write_text_atomic
from dagster_project.lib.serving.chart_breakdowns import (
    IMPORTS_PNG,
    imports_title,
    load_compound_imports,
    load_provinces,
    provinces_png_name,
    provinces_title,
)
from dagster_project.lib.serving.chart_data import HS8, PARTNERS, WORLD, headline, load_series, partner_names
from dagster_project.lib.serving.report_page import partners_png_name, report_html, world_png_name

__all__ = ["HS8", "PARTNERS", "REPORT_HTML", "REPORT_JSON", "ReportFiles", "kept_report", "render_report",
           "renderer_version"]

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"  # the headline and the SHA-256 of each file drawn

# The code the files are drawn by, and the libraries that draw them.
_RENDERER_MODULES = ("charts.py", "chart_data.py", "chart_figures.py", "report_page.py", "chart_breakdowns.py")
_RENDERER_DISTS = ("matplotlib", "numpy", "pillow")


@dataclass(frozen=True)
class ReportFiles:
    """What `render_report` wrote, and the numbers an asset can put in its metadata."""

    world_png: Path
    partners_png: Path
    html: Path
    headline: dict[str, Any] = field(default_factory=dict)
    rendered: bool = True  # False when the files were kept as drawn earlier
    provinces_png: Path | None = None  # exports of the code by province
    imports_png: Path | None = None  # imports of rare-earth compounds by partner

    @property
    def paths(self) -> list[Path]:
        return [self.world_png, self.partners_png, self.provinces_png, self.imports_png, self.html]


def _files(out_dir: Path, hs8: str, headline: dict[str, Any], rendered: bool) -> ReportFiles:
    return ReportFiles(out_dir / world_png_name(hs8), out_dir / partners_png_name(hs8), out_dir / REPORT_HTML,
                       headline, rendered, out_dir / provinces_png_name(hs8), out_dir / IMPORTS_PNG)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def renderer_version() -> str:
    """A digest of this package's drawing code and of the matplotlib / NumPy / Pillow versions:
    the same data drawn by another renderer may give other bytes."""
    digest = hashlib.sha256()
    for name in _RENDERER_MODULES:
        digest.update(Path(__file__).with_name(name).read_bytes())
    digest.update(json.dumps({dist: _version(dist) for dist in _RENDERER_DISTS}, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def kept_report(out_dir: Path, hs8: str = HS8) -> ReportFiles | None:
    """The report in `out_dir` as `report.json` recorded it, or None when the record is missing
    or unreadable, or a file is missing or differs from the one drawn."""
    out_dir = Path(out_dir)
    try:
        recorded = json.loads((out_dir / REPORT_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or not isinstance(recorded.get("files"), dict):
        return None
    files = _files(out_dir, hs8, recorded.get("headline") or {}, rendered=False)
    hashes = recorded["files"]
    if all(hashes.get(p.name) is not None and hashes.get(p.name) == _sha256(p) for p in files.paths):
        return files
    return None


def render_report(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    *,
    hs8: str = HS8,
    partners: Sequence[str] = PARTNERS,
) -> ReportFiles:
    """Draw `world_<hs8>.png`, `partners_<hs8>.png` and write `report.html` and `report.json` in `out_dir`.

    Reads only; works on a read-only connection. With no rows for `hs8` (or no
    `marts.export_growth_monthly` at all) it writes "no data" charts and a report saying so.
    """
    from dagster_project.lib.serving.chart_breakdowns import draw_breakdown
    from dagster_project.lib.serving.chart_figures import draw_charts

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    partners = tuple(p for p in partners if p != WORLD)
    months, series = load_series(con, hs8, partners)
    names = partner_names(con, partners) if months else {}
    files = _files(out_dir, hs8, headline(months, series, hs8), rendered=True)

    draw_charts(files.world_png, files.partners_png, months, series, partners, names, hs8)
    draw_breakdown(files.provinces_png, provinces_title(hs8), "Monthly export quantity by province, tonnes",
                   load_provinces(con, hs8))
    draw_breakdown(files.imports_png, imports_title(), "Monthly import quantity by country of origin, tonnes",
                   load_compound_imports(con))
    write_text_atomic(files.html, report_html(months, series, hs8))
    record = {"files": {path.name: _sha256(path) for path in files.paths}, "headline": files.headline}
    write_text_atomic(out_dir / REPORT_JSON, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return files
