"""A self-contained copy of the dbt docs site that opens from disk (file://).

Pure library code (no Dagster imports). dbt's docs page (`target/index.html`) loads
`manifest.json` and `catalog.json` with an HTTP request, which browsers refuse for pages
opened from the file system. dbt-core >= 1.7 has `dbt docs generate --static`, which writes
`target/static_index.html` with both documents inlined in place of the placeholders
`"MANIFEST.JSON INLINE DATA"` and `"CATALOG.JSON INLINE DATA"` in the page's script.

`build_static_docs(target_dir, out_dir)` publishes:

    out_dir/index.html     the static page (works from disk and over HTTP)
    out_dir/manifest.json  copies of the documents, for tools and for the page when served
    out_dir/catalog.json

It uses `target/static_index.html` when it exists, is at least as new as both JSON files
and is safe to embed (see below); otherwise it inlines the JSON itself into
`target/index.html` (or, if that page has no placeholders, into the docs template of the
installed dbt-core) exactly as dbt does, except that "</" inside the JSON is written as
"<\\/" (the same JSON value) so that a "</script>" in a model description or compiled SQL
cannot end the script element early; dbt's own `--static` output has that flaw.

Every file is written under a temporary name and moved into place with `os.replace`;
index.html goes last.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import uuid
from pathlib import Path

MANIFEST = "manifest.json"
CATALOG = "catalog.json"
INDEX = "index.html"
STATIC_INDEX = "static_index.html"

MANIFEST_PLACEHOLDER = '"MANIFEST.JSON INLINE DATA"'
CATALOG_PLACEHOLDER = '"CATALOG.JSON INLINE DATA"'
_PLACEHOLDERS = re.compile(re.escape(MANIFEST_PLACEHOLDER) + "|" + re.escape(CATALOG_PLACEHOLDER))
_UNSAFE_IN_SCRIPT = re.compile(r"</|<!--", re.IGNORECASE)


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read_json_text(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dbt docs generate` first")
    text = path.read_text(encoding="utf-8").strip()  # dbt strips too
    json.loads(text)  # fail here, not in the browser, on a truncated document
    return text


def _script_safe(json_text: str) -> str:
    """The same JSON value, with no "</" or "<!--" that could end or confuse a <script>."""
    return json_text.replace("</", "<\\/").replace("<!--", "<\\u0021--")


def dbt_docs_template() -> Path | None:
    """The docs page shipped with the installed dbt-core, found without importing dbt."""
    spec = importlib.util.find_spec("dbt")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        candidate = Path(root) / "task" / "docs" / "index.html"
        if candidate.is_file():
            return candidate
    return None


def inline_docs(template_html: str, manifest_json: str, catalog_json: str) -> str:
    """Replace both placeholders in one pass (so neither document's text is searched again)."""
    found = _PLACEHOLDERS.findall(template_html)
    if sorted(found) != sorted([MANIFEST_PLACEHOLDER, CATALOG_PLACEHOLDER]):
        raise ValueError(
            "docs page does not contain the dbt inline-data placeholders exactly once each "
            f"(found {found!r})"
        )
    data = {MANIFEST_PLACEHOLDER: _script_safe(manifest_json), CATALOG_PLACEHOLDER: _script_safe(catalog_json)}
    return _PLACEHOLDERS.sub(lambda m: data[m.group(0)], template_html)


def _usable_static_index(target_dir: Path, manifest_json: str, catalog_json: str) -> Path | None:
    static = target_dir / STATIC_INDEX
    if not static.is_file():
        return None
    newest_json = max((target_dir / MANIFEST).stat().st_mtime, (target_dir / CATALOG).stat().st_mtime)
    if static.stat().st_mtime < newest_json:
        return None  # left over from an earlier `--static` run
    if _UNSAFE_IN_SCRIPT.search(manifest_json) or _UNSAFE_IN_SCRIPT.search(catalog_json):
        return None  # dbt inlined these verbatim; build a safe page instead
    return static


def build_static_docs(target_dir: Path, out_dir: Path) -> Path:
    """Publish the dbt docs of `target_dir` (after `dbt docs generate`) as a static site.

    Returns the path of `out_dir/index.html`. Raises FileNotFoundError when manifest.json or
    catalog.json is missing, ValueError when no docs page with the placeholders is found.
    """
    target_dir, out_dir = Path(target_dir), Path(out_dir)
    manifest_json = _read_json_text(target_dir / MANIFEST)
    catalog_json = _read_json_text(target_dir / CATALOG)

    static = _usable_static_index(target_dir, manifest_json, catalog_json)
    if static is not None:
        page = static.read_bytes()
    else:
        templates = [target_dir / INDEX, dbt_docs_template()]
        page = None
        for template in templates:
            if template is None or not template.is_file():
                continue
            text = template.read_text(encoding="utf-8").strip()  # as dbt reads it
            if MANIFEST_PLACEHOLDER in text and CATALOG_PLACEHOLDER in text:
                page = inline_docs(text, manifest_json, catalog_json).encode("utf-8")
                break
        if page is None:
            raise ValueError(
                f"no dbt docs page with inline-data placeholders in {target_dir / INDEX} "
                "or the installed dbt-core"
            )

    out_dir.mkdir(parents=True, exist_ok=True)
    _write_bytes(out_dir / MANIFEST, (target_dir / MANIFEST).read_bytes())
    _write_bytes(out_dir / CATALOG, (target_dir / CATALOG).read_bytes())
    index = out_dir / INDEX
    _write_bytes(index, page)
    return index
