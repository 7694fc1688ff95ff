"""Every example in README.md and docs/*.md runs against the sample build and returns rows.

SQL blocks (```sql) run as written; a block that is deliberately not runnable carries the marker
comment `-- example: not runnable` and is skipped, saying so. The client snippets run with the
client where it is installed (the DuckDB CLI, Node with @duckdb/node-api: set
CUSTOMS_NODE_MODULES to a folder holding node_modules/@duckdb/node-api) and otherwise through the
Python driver, reading the same path and SQL out of the snippet. `pytest -v` lists them.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUNNABLE = "-- example: not runnable"
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w+)\n(?P<body>.*?)^(?P=indent)```", re.S | re.M)
SERVED = "data/warehouse.duckdb"


def examples(lang: str) -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group("lang") == lang:
                line = text.count("\n", 0, m.start()) + 1
                found.append((f"{doc.relative_to(ROOT)}:{line}", textwrap.dedent(m.group("body"))))
    return found


SQL = examples("sql")


def one(lang: str, needle: str) -> tuple[str, str]:
    """The example containing `needle` (written the same wherever it is repeated)."""
    matches = [(where, code) for where, code in examples(lang) if needle in code]
    assert len({code for _, code in matches}) == 1, f"expected one ```{lang} example with {needle!r}, found {matches}"
    return matches[0]


@pytest.fixture(scope="module")
def repo_like(sample_build, tmp_path_factory) -> Path:
    """A folder laid out as the repository is, whose data/warehouse.duckdb is the sample build."""
    root = tmp_path_factory.mktemp("repo")
    (root / "data").mkdir()
    (root / SERVED).symlink_to(sample_build.warehouse)
    return root


def rows_of(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def test_the_docs_have_examples():
    assert len(SQL) >= 8, [where for where, _ in SQL]


@pytest.mark.parametrize("where,sql", SQL, ids=[where for where, _ in SQL])
def test_sql_example_returns_rows(sample_build, where, sql):
    if NOT_RUNNABLE in sql:
        pytest.skip(f"{where} is marked not runnable")
    rows = rows_of(sample_build.warehouse, sql)
    assert rows, f"{where} returned no rows on the sample:\n{sql}"


def test_headline_example_tells_world_from_us(sample_build):
    where, sql = one("sql", "partner_iso3 in ('WLD', 'USA') order by month")
    assert "README.md" in where
    rows = rows_of(sample_build.warehouse, sql)
    keys = [(r[0], r[1]) for r in rows]
    assert len(keys) == len(set(keys)) == 48 and {k[1] for k in keys} == {"WLD", "USA"}
    june = {r[1]: r for r in rows if r[0] == "2025-06"}
    assert float(june["WLD"][2]) == 3188.0 and float(june["USA"][2]) == 353.0
    assert june["WLD"][-1] == "published"


def test_eu27_example_is_the_view(sample_build):
    _, sql = one("sql", "count(*) as member_states")
    (month, eu27_t, members), = rows_of(sample_build.warehouse, sql)
    assert eu27_t == pytest.approx(1267.2) and members == 15
    view = sample_build.scalar(
        "select round(quantity_t, 1) from marts.v_exports_eu_monthly where hs8 = '85051110' and month = date '2025-06-01'")
    assert float(view) == pytest.approx(eu27_t)
    # the trap the dimension removes: the same sum through dim_partner counts Spain four times
    trap = sample_build.scalar(
        """select round(sum(g.quantity_kg) / 1000, 1) from marts.export_growth_monthly g
           join marts.dim_partner p using (partner_iso3)
           where p.is_eu and g.hs8 = '85051110' and g.month = date '2025-06-01'""")
    assert float(trap) > eu27_t


def test_as_of_examples_give_the_figure_before_and_after_the_revision(sample_build):
    _, after = one("sql", "h.valid_from <= r.loaded_at")
    _, before = one("sql", "h.load_seq < r.load_seq")
    after_rows = {r[0]: r for r in rows_of(sample_build.warehouse, after)}
    before_rows = {r[0]: r for r in rows_of(sample_build.warehouse, before)}
    # Hong Kong's neodymium oxide, March 2024: 3,160 kg as first published, 3,476 kg revised
    assert float(before_rows["110"][1]) == 3160 and before_rows["110"][3] == "exports/gacc_exports_202403.csv"
    assert float(after_rows["110"][1]) == 3476 and after_rows["110"][3] == "exports/gacc_exports_202403_revised.csv"
    assert set(before_rows) == set(after_rows)


def test_python_snippet(repo_like):
    where, code = one("python", "duckdb.connect")
    assert SERVED in code
    out = subprocess.run([sys.executable, "-c", code + "\nassert rows\nprint(len(rows))"], cwd=repo_like,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{where}: {out.stderr}"
    assert int(out.stdout.strip()) > 0


def test_duckdb_cli_snippet(repo_like):
    where, code = one("sh", "duckdb -readonly")
    argv = shlex.split(code.strip())
    assert argv[:3] == ["duckdb", "-readonly", SERVED] and argv[3] == "-c"
    if shutil.which("duckdb"):
        out = subprocess.run(argv, cwd=repo_like, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "WLD" in out.stdout, f"{where}: {out.stderr}"
    else:  # no CLI here: the same file, read-only, the same SQL, through the same engine
        assert {r[1] for r in rows_of(repo_like / argv[2], argv[4])} == {"WLD", "USA"}


def _node_modules() -> Path | None:
    folder = os.environ.get("CUSTOMS_NODE_MODULES")
    if folder and shutil.which("node") and (Path(folder) / "node_modules" / "@duckdb" / "node-api").is_dir():
        return Path(folder) / "node_modules"
    return None


def _run_node(repo_like: Path, script: str) -> str:
    (repo_like / "node_modules").unlink(missing_ok=True)
    (repo_like / "node_modules").symlink_to(_node_modules())
    (repo_like / "example.mjs").write_text(script)
    out = subprocess.run(["node", "example.mjs"], cwd=repo_like, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_node_snippet(repo_like):
    where, code = one("js", "@duckdb/node-api")
    path = re.search(r"DuckDBInstance\.create\('([^']+)'", code).group(1)
    sql = re.search(r"runAndReadAll\('([^']+)'\)", code).group(1)
    assert path == SERVED and "READ_ONLY" in code
    if _node_modules():
        assert int(_run_node(repo_like, code).strip()) > 0, where
    else:
        assert rows_of(repo_like / path, sql), where


def test_evidence_source_path_resolves_and_opens(repo_like):
    """Evidence resolves `filename` from sources/<name>/ and refuses absolute paths; the README's form works."""
    where, code = one("yaml", "type: duckdb")
    source = yaml.safe_load(code)
    filename = source["options"]["filename"]
    assert not os.path.isabs(filename), f"{where}: Evidence refuses absolute paths"
    source_dir = repo_like / "evidence" / "sources" / source["name"]
    source_dir.mkdir(parents=True)
    resolved = (source_dir / filename).resolve()
    assert resolved == (repo_like / SERVED).resolve(), f"{where}: {filename} resolves to {resolved}"
    sql = "select count(*) from marts.v_magnet_exports_by_partner"
    if _node_modules():  # the driver Evidence embeds, opening the path as Evidence does
        script = (
            "import path from 'node:path';\n"
            "import { DuckDBInstance } from '@duckdb/node-api';\n"
            f"const file = path.join('evidence/sources/{source['name']}', {filename!r});\n"
            "const db = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });\n"
            f"const r = await (await db.connect()).runAndReadAll({sql!r});\n"
            "console.log(String(r.getRows()[0][0]));\n"
        )
        assert int(_run_node(repo_like, script).strip()) > 0
    else:
        assert rows_of(source_dir / filename, sql)[0][0] > 0
