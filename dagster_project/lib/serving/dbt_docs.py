"""A self-contained copy of the dbt docs site that opens from disk (file://).

Pure library code (no Dagster imports, and dbt is never imported or run).

What a build uses: `catalog_from_duckdb(con, manifest)` makes the catalog `dbt docs generate`
would write, from DuckDB's own catalog (the query dbt-duckdb's `get_catalog` macro runs:
tables, views, columns, types and the comments `persist_docs` stored), and
`publish_static_docs` inlines it with the manifest into the docs page shipped with the
installed dbt-core (`build_docs_site` does both). That takes tens of milliseconds, where a
`dbt docs generate` subprocess (start-up, a parse, a compile of every node, the catalog
queries) took 5-7 s a build. The manifest of the build's own `dbt build` carries the
compiled SQL that `dbt docs generate` would have compiled.

dbt's docs page (`target/index.html`) loads
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

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


def read_json_document(path: Path) -> tuple[str, Any]:
    """A JSON document's text (stripped, as dbt inlines it) and its value; fails on a truncated file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dbt docs generate` first")
    text = path.read_text(encoding="utf-8").strip()  # dbt strips too
    return text, json.loads(text)  # fail here, not in the browser, on a truncated document


def _read_json_text(path: Path) -> str:
    return read_json_document(path)[0]


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


# ---------------------------------------------------------------------------------------
# the catalog, from DuckDB (no dbt process)

CATALOG_SCHEMA_VERSION = "https://schemas.getdbt.com/dbt/catalog/v1.json"
# Node types that are relations in the warehouse (dbt's `is_relational`: refable nodes).
_RELATIONAL = ("model", "seed", "snapshot")
_NO_STATS = {
    "has_stats": {
        "id": "has_stats",
        "label": "Has Stats?",
        "value": False,
        "include": False,
        "description": "Indicates whether there are statistics for this table",
    }
}

# dbt-duckdb's get_catalog query (macros/catalog.sql), on the connection's own database.
_CATALOG_SQL = """
WITH tables AS (
    SELECT database_name, schema_name, table_name, 'BASE TABLE' AS table_type, comment
    FROM duckdb_tables() WHERE database_name = current_database()
    UNION ALL
    SELECT database_name, schema_name, view_name, 'VIEW', comment
    FROM duckdb_views() WHERE database_name = current_database()
)
SELECT t.database_name, t.schema_name, t.table_name, t.table_type, t.comment,
       c.column_name, c.column_index, c.data_type, c.comment
FROM tables t
JOIN duckdb_columns() c
  ON c.database_name = t.database_name AND c.schema_name = t.schema_name AND c.table_name = t.table_name
ORDER BY t.schema_name, t.table_name, c.column_index
"""


def _relation_key(node: Mapping[str, Any]) -> tuple[str, str] | None:
    schema = node.get("schema")
    name = node.get("identifier") if node.get("resource_type") == "source" else (node.get("alias") or node.get("name"))
    if not schema or not name:
        return None
    return schema.lower(), name.lower()


def catalog_from_duckdb(con, manifest: Mapping[str, Any], generated_at: datetime | None = None) -> dict[str, Any]:
    """The catalog.json `dbt docs generate` writes for `manifest`, read from DuckDB's catalog.

    `con` is a connection (read-only is enough) to the database dbt built. Relations are
    matched to the manifest's models, seeds, snapshots (not ephemeral) and sources by schema
    and name, case-insensitively, in the connection's current database (the manifest may have
    been parsed for a file of another name). Relations the manifest does not know are left out,
    as dbt leaves them out.
    """
    nodes_by_key: dict[tuple[str, str], str] = {}
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") in _RELATIONAL and (node.get("config") or {}).get("materialized") != "ephemeral":
            key = _relation_key(node)
            if key is not None:
                nodes_by_key[key] = unique_id
    sources_by_key: dict[tuple[str, str], list[str]] = {}
    for unique_id, source in manifest.get("sources", {}).items():
        key = _relation_key(source)
        if key is not None:
            sources_by_key.setdefault(key, []).append(unique_id)

    tables: dict[tuple[str, str], dict[str, Any]] = {}
    for database, schema, name, kind, comment, column, index, data_type, column_comment in con.execute(_CATALOG_SQL).fetchall():
        key = (schema.lower(), name.lower())
        if key not in nodes_by_key and key not in sources_by_key:
            continue
        table = tables.get(key)
        if table is None:
            table = tables[key] = {
                "metadata": {"type": kind, "schema": schema, "name": name, "database": database,
                             "comment": comment, "owner": None},
                "columns": {},
                "stats": _NO_STATS,
            }
        table["columns"][column] = {"type": data_type, "index": int(index), "name": column, "comment": column_comment}

    nodes = {nodes_by_key[key]: {**table, "unique_id": nodes_by_key[key]} for key, table in tables.items() if key in nodes_by_key}
    sources = {
        unique_id: {**table, "unique_id": unique_id}
        for key, table in tables.items()
        for unique_id in sorted(sources_by_key.get(key, ()))
    }
    meta = manifest.get("metadata", {})
    when = (generated_at or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    return {
        "metadata": {
            "dbt_schema_version": CATALOG_SCHEMA_VERSION,
            "dbt_version": meta.get("dbt_version"),
            "generated_at": when.isoformat() + "Z",
            "invocation_id": meta.get("invocation_id"),
            "invocation_started_at": meta.get("invocation_started_at"),
            "env": {},
        },
        "nodes": nodes,
        "sources": sources,
        "errors": None,
    }


def catalog_fingerprint(catalog: Mapping[str, Any]) -> str:
    """What the docs show of a catalog (its relations and columns), not when it was made."""
    import hashlib

    body = json.dumps({"nodes": catalog.get("nodes"), "sources": catalog.get("sources")}, sort_keys=True)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def publish_static_docs(manifest_json: str, catalog_json: str, out_dir: Path, template: Path | None = None) -> Path:
    """Write out_dir/index.html (both documents inlined, script-safe) and the two JSON files.

    `template` defaults to the docs page of the installed dbt-core. Returns the index path.
    """
    template = template or dbt_docs_template()
    if template is None or not template.is_file():
        raise ValueError("no dbt docs page found: is dbt-core installed?")
    page = inline_docs(template.read_text(encoding="utf-8").strip(), manifest_json.strip(), catalog_json.strip())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_bytes(out_dir / MANIFEST, manifest_json.encode("utf-8"))
    _write_bytes(out_dir / CATALOG, catalog_json.encode("utf-8"))
    index = out_dir / INDEX
    _write_bytes(index, page.encode("utf-8"))
    return index


def build_docs_site(con, manifest_path: Path, out_dir: Path, catalog: Mapping[str, Any] | None = None) -> Path:
    """The static docs site of `manifest_path` with the catalog of the database `con` is on.

    Pass `catalog` when it was already computed with `catalog_from_duckdb` for this manifest.
    """
    manifest_json, manifest = read_json_document(manifest_path)
    if catalog is None:
        catalog = catalog_from_duckdb(con, manifest)
    return publish_static_docs(manifest_json, json.dumps(catalog), out_dir)
