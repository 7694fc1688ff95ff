"""GX data docs that open offline: the CDN files they load, served from beside the pages.

GX 1.x has no offline setting: every page it writes loads Bootstrap, jQuery, bootstrap-table,
Font Awesome and Vega from CDNs and its logo from S3. Without internet the index shows empty
tables. The files are vendored (data_docs_assets/, versions and licences in its README), copied
to `<docs>/static/vendor/` and every page is pointed at them by a relative path.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from dagster_project.lib.files import write_text_atomic
from dagster_project.lib.offline_html import localise

ASSETS_DIR = Path(__file__).with_name("data_docs_assets")
VENDOR = Path("static") / "vendor"
GX_IMAGES = Path("static") / "images"

# remote URL GX 1.24 writes (query string dropped) -> the file served instead, relative to the docs root
ASSETS = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": VENDOR / "bootstrap/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": VENDOR / "bootstrap/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": VENDOR / "bootstrap-table/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": VENDOR / "bootstrap-table/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        VENDOR / "bootstrap-table/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        VENDOR / "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        VENDOR / "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        VENDOR / "bootstrap-datepicker/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        VENDOR / "bootstrap-datepicker/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        VENDOR / "bootstrap-dark/bootstrap-prefers-dark.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": VENDOR / "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": VENDOR / "popper.js/popper.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": VENDOR / "fontawesome/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": VENDOR / "vega/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": VENDOR / "vega-lite/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": VENDOR / "vega-embed/vega-embed.min.js",
    # the logo: GX writes its own copy of logo-long.png under static/images; the dark one has none
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png": GX_IMAGES / "logo-long.png",
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png": GX_IMAGES / "logo-long.png",
}


def make_offline(docs_dir: Path) -> list[Path]:
    """Copy the vendored files into `docs_dir` and point every page (and GX's own CSS) at them; the files rewritten."""
    shutil.copytree(ASSETS_DIR, docs_dir / VENDOR, dirs_exist_ok=True, ignore=shutil.ignore_patterns("README.md"))
    rewritten = []
    for page in sorted([*docs_dir.rglob("*.html"), *(docs_dir / "static" / "styles").glob("*.css")]):
        to_root = Path(os.path.relpath(docs_dir, page.parent))

        def local_for(url: str, to_root=to_root) -> str | None:
            target = ASSETS.get(url.split("?")[0])
            return None if target is None else (to_root / target).as_posix()

        text = page.read_text(encoding="utf-8")
        new = localise(text, local_for)
        if new != text:
            write_text_atomic(page, new)
            rewritten.append(page)
    return rewritten
