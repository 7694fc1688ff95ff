"""Every HTML page a build writes opens with no network: nothing it loads is on a remote host.

After the real sample build, each page under the outputs folder (GX data docs in quality/, the dbt
docs in docs/, the chart report in report/) and each local stylesheet it loads is read; any
remote load (src, <link href>, CSS url()/@import, fetch, a script's .src) fails the test, naming
page and URL. Local files the pages load must exist. `pytest -s` prints the pages checked.
"""
from __future__ import annotations

import re
from pathlib import Path

from dagster_project.lib.offline_html import localise, remote_loads
from dagster_project.lib.quality.offline_data_docs import ASSETS, ASSETS_DIR

# the scripts and stylesheets a page loads from disk (GX's favicon links are one folder off on
# validation pages, a GX bug of no consequence; dbt's page is one script whose strings hold tags)
LOCAL_LOAD = re.compile(
    r"<(?:script\b[^>]*?\ssrc|link\b[^>]*?rel=[\"']stylesheet[\"'][^>]*?\shref)\s*=\s*[\"']"
    r"(?!(?:https?:)?//|data:)([^\"'?#]+)",
    re.IGNORECASE,
)


def _pages(out: Path) -> list[Path]:
    return sorted(p for folder in ("quality", "docs", "report") for p in (out / folder).rglob("*.html"))


def test_every_generated_page_loads_nothing_remote(sample_build):
    out = sample_build.warehouse.parent
    pages = _pages(out)
    assert any(p.parent == out / "quality" for p in pages), "no GX data docs index"
    assert out / "docs" / "index.html" in pages and out / "report" / "report.html" in pages
    assert any("validations" in p.parts for p in pages), "no GX validation page"

    remote, missing, checked = [], [], []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        checked.append(page)
        remote += [f"{page.relative_to(out)}: {url}" for url in remote_loads(text)]
        for ref in [] if page.is_relative_to(out / "docs") else LOCAL_LOAD.findall(text):
            target = (page.parent / ref).resolve()
            if not target.is_file():
                missing.append(f"{page.relative_to(out)}: {ref}")
            elif target.suffix == ".css" and target not in checked:
                checked.append(target)
                remote += [f"{target.relative_to(out)}: {url}" for url in remote_loads(target.read_text(encoding="utf-8"))]

    print(f"\n{len(checked)} files checked for remote loads (pages, then the stylesheets they load):")
    for path in checked:
        print(f"  {path.relative_to(out)}")
    assert not remote, "remote loads:\n" + "\n".join(remote)
    assert not missing, "local files missing:\n" + "\n".join(missing)


def test_the_scanner_finds_each_kind_of_remote_load():
    page = """<link rel="stylesheet" href="https://cdn.example/a.css" integrity="sha-x" crossorigin="anonymous">
    <script src="//cdn.example/b.js"></script><img src='http://img.example/c.png'>
    <style>@import "https://fonts.example/d.css"; .x { background: url(https://s3.example/e.png) }</style>
    <script>i.src="//tracker.example/f.js"; fetch("https://api.example/g")</script>
    <a href="https://docs.example/">docs</a> <script src="static/local.js"></script>"""
    assert [u.split("/")[2] for u in remote_loads(page)] == [
        "cdn.example", "cdn.example", "img.example", "fonts.example", "s3.example", "tracker.example", "api.example"]
    local = localise(page, lambda url: "local/" + url.rsplit("/", 1)[-1] if "cdn" in url else None)
    assert 'href="local/a.css">' in local and 'src="local/b.js"' in local
    assert "integrity" not in local and "crossorigin" not in local
    assert 'href="https://docs.example/"' in local  # a link the reader clicks is not a load


def test_every_vendored_asset_is_used_and_present():
    vendored = {p.relative_to(ASSETS_DIR).as_posix() for p in ASSETS_DIR.rglob("*")
                if p.is_file() and p.name != "README.md" and not p.name.startswith("LICENSE")}
    served = {t.relative_to("static/vendor").as_posix() for t in ASSETS.values() if t.parts[1] == "vendor"}
    fonts = {p for p in vendored if p.startswith("fontawesome/webfonts/")}
    assert served <= vendored and vendored - served == fonts  # the fonts are loaded by all.min.css
