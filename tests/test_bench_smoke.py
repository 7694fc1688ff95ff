"""Smoke test of bench/: the generator writes real-format downloads, deterministically, that the
project's ingest loads without a rejection, and the baseline turns them into both marts; the
probes run on them. Seconds, not minutes: a handful of codes, two months, small files."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import duckdb

from dagster_project.lib.ingest import gacc_format as fmt
from dagster_project.lib.warehouse import database as db
from dagster_project.lib.ingest.landing import ingest_landing
from dagster_project.lib.settings import PROJECT_ROOT


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", PROJECT_ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _load("generate")
baseline = _load("baseline")
probes = _load("probes")
dashboard = _load("dashboard")

FIRST, LAST = dt.date(2023, 11, 1), dt.date(2023, 12, 1)


def _generate(landing: Path):
    return generate.generate(landing, codes=12, first=FIRST, last=LAST, rows_per_file=150, quiet=True)


def test_generator_writes_the_download_format_deterministically(tmp_path):
    g = _generate(tmp_path / "a")
    files = sorted((tmp_path / "a" / "exports").glob("*.csv"))
    assert g.files == len(files) >= 4 and g.rows > 0 and g.codes == 12
    languages = set()
    for path in files:
        raw = path.read_bytes()
        text = raw.decode("gb18030")
        lines = text.split("\r\n")
        assert lines[-1] == "", "every line ends with CRLF"
        assert "\n" not in "".join(lines)
        for line in lines[:-1]:
            assert line.startswith('"') and line.endswith('",'), "every field quoted, trailing comma"
        header = fmt.map_header(lines[0][1:-2].split('","'))
        languages.add(header.language)
        assert header.currency == "USD" and header.has("period")
        assert len(lines) - 2 <= 150  # header + rows + the empty string after the last CRLF
        assert any("," in line.split('","')[5] or "," in line.split('","')[6] for line in lines[1:-1]), "thousands separators"
        assert path.stem.split("_")[2] in {"202311", "202312"}
    assert languages == {"zh", "en"}
    again = _generate(tmp_path / "b")
    assert again.rows == g.rows
    for path in files:
        assert (tmp_path / "b" / "exports" / path.name).read_bytes() == path.read_bytes()
        assert (tmp_path / "b" / "exports" / path.name).stat().st_mtime == path.stat().st_mtime


def test_project_ingest_and_baseline_agree(tmp_path):
    landing = tmp_path / "landing"
    g = _generate(landing)

    con = duckdb.connect(str(tmp_path / "ingest.duckdb"))
    con.execute(db.RAW_DDL)
    report = ingest_landing(con, landing, tmp_path / "staging", today=dt.date(2026, 1, 15))
    assert not report.rejected, report.rejected[:1]
    assert report.rows_loaded == g.rows
    declared = dict(con.execute(
        "SELECT hs8, any_value(declared_unit_code) FROM raw.customs_rows GROUP BY hs8").fetchall())
    assert con.execute("SELECT count(*) FROM raw.customs_rows WHERE unit_factor <> 1").fetchone()[0] == 0
    raw_kg = con.execute("SELECT sum(quantity) FILTER (WHERE declared_unit_code = '09'), sum(value) FROM raw.customs_rows").fetchone()
    con.close()

    out = tmp_path / "baseline.duckdb"
    result = baseline.build(landing, out, tmp_path / "utf8", jobs=1, keep_utf8=False)
    assert result["rows"] == result["fct_rows"] == g.rows and result["files"] == g.files
    marts = duckdb.connect(str(out), read_only=True)
    fct = marts.execute("SELECT sum(quantity_kg), sum(value_usd), count(DISTINCT hs8) FROM marts.fct_exports_monthly").fetchone()
    assert fct[0] == raw_kg[0] and fct[1] == raw_kg[1] and fct[2] == len(declared)
    # the world row of every month and code is the sum of its partners
    assert marts.execute("""
        SELECT count(*) FROM (SELECT month, hs8, sum(quantity_kg) FILTER (WHERE partner_iso3 <> 'WLD') AS p,
                                     sum(quantity_kg) FILTER (WHERE partner_iso3 = 'WLD') AS w
                              FROM marts.export_growth_monthly GROUP BY ALL) WHERE p IS DISTINCT FROM w""").fetchone()[0] == 0
    # December compares with November: mom_pct exists where the partner traded in both months
    assert marts.execute("SELECT count(mom_pct) FROM marts.export_growth_monthly WHERE month = DATE '2023-12-01'").fetchone()[0] > 0
    marts.close()


def test_ingest_design_probe_measures_both_designs_on_the_same_rows(tmp_path):
    landing = tmp_path / "landing"
    g = _generate(landing)
    result = probes.probe_ingest_design(landing, tmp_path / "work", None)
    assert result["files"] == g.files and result["rows"] == result["text_rows"] == g.rows
    assert result["verdicts_equal"]
    steps = result["per_million_rows"]
    assert {"sha256", "transcode", "read_csv into a table", "today: parse into the checked table",
            "text: verdict over the parse", "text: insert into a raw table of text"} <= set(steps)
    assert all(v["wall_s"] > 0 for v in steps.values())


def test_baseline_under_a_memory_limit_says_where_it_ran_out(tmp_path):
    landing = tmp_path / "landing"
    _generate(landing)
    fits = baseline.build(landing, tmp_path / "fits.duckdb", tmp_path / "utf8", jobs=1, keep_utf8=False, memory_limit="200MB")
    assert "error" not in fits and fits["fct_rows"] == fits["rows"] and fits["spill_peak_bytes"] >= 0
    short = baseline.build(landing, tmp_path / "short.duckdb", tmp_path / "utf8", jobs=1, keep_utf8=False, memory_limit="2MB")
    assert short["error"].startswith("Out of Memory Error") and short["failed_in"] == "read"
    assert not (tmp_path / "short.duckdb.tmp").exists() and not (tmp_path / "utf8").exists()


def _probe(*args: str) -> dict:
    """A probe in its own process, as bench/run.py runs them (the ingest probe wraps module functions)."""
    out = subprocess.run([sys.executable, str(PROJECT_ROOT / "bench" / "probes.py"), *args],
                         capture_output=True, text=True, check=True, cwd=PROJECT_ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_ingest_probe_breaks_the_ingest_down_batched_and_per_file(tmp_path):
    landing = tmp_path / "landing"
    g = _generate(landing)
    batched = _probe("ingest", str(landing), str(tmp_path / "work"))
    per_file = _probe("ingest", str(landing), str(tmp_path / "work"), "--per-file")
    for result in (batched, per_file):
        assert result["files"] == g.files and result["rows"] == g.rows and result["rejected"] == 0
        # the timers sit where the ingest looks the functions up: each was called
        assert result["transcode_s"] > 0 and result["sha256_s"] > 0 and result["setup_s"] > 0
        assert result["hashed"] == g.files
        assert result["sql_s"] > 0 and result["sql_top"]
    assert batched["batched_files"] == g.files and per_file["batched_files"] == 0


def _served_from_baseline(tmp_path: Path) -> Path:
    """A file shaped like the served one where the dashboard reads: the baseline's growth mart,
    and the small table of the rare-earth headings (dbt's export_growth_rare_earths) made from it."""
    landing = tmp_path / "landing"
    _generate(landing)
    served = tmp_path / "served.duckdb"
    baseline.build(landing, served, tmp_path / "utf8", jobs=1, keep_utf8=False)
    con = duckdb.connect(str(served))
    con.execute("CREATE TABLE marts.export_growth_rare_earths AS SELECT * FROM marts.export_growth_monthly "
                "WHERE starts_with(hs8, '8505') OR starts_with(hs8, '2805') OR starts_with(hs8, '2846')")
    con.close()
    return served


def test_dashboard_probe_times_one_series_from_three_tables(tmp_path):
    served = _served_from_baseline(tmp_path)
    con = duckdb.connect(str(served), read_only=True)
    partners = con.execute("""SELECT partner_iso3 FROM marts.export_growth_monthly WHERE hs8 = '85051110'
                              AND partner_iso3 <> 'WLD' GROUP BY 1 ORDER BY sum(quantity_kg) DESC, 1 LIMIT 5""").fetchall()
    expected = con.execute("""SELECT count(*) FROM marts.export_growth_monthly WHERE hs8 = '85051110'
                              AND (partner_iso3 = 'WLD' OR list_contains($p, partner_iso3))""",
                           {"p": [p for p, in partners]}).fetchone()[0]
    con.close()

    result = _probe("dashboard", str(served), str(tmp_path / "scratch"), "--repeats", "2")
    assert result["partners"] == [p for p, in partners]
    assert result["rows"] == expected > 0 and result["same_rows"]
    assert set(result["tables"]) == {"served", "ordered", "rare_earths"}
    for table in result["tables"].values():
        assert table["cold"]["rows"] == expected and len(table["cold"]["query_runs_s"]) == 2
        assert table["cold"]["open_s"] > 0 and table["cold"]["query_s"] > 0 and table["warm"]["query_s"] > 0
        assert table["row_groups"] >= 1 and table["row_groups_not_skipped"] >= 1
    assert result["tables"]["ordered"]["rows"] == result["tables"]["served"]["rows"]
    assert result["tables"]["rare_earths"]["rows"] < result["tables"]["served"]["rows"]
    assert set(result["ratios"]["cold"]) == set(result["ratios"]["warm"]) == {"served_vs_ordered", "served_vs_rare_earths"}
    assert not any((tmp_path / "scratch").iterdir()), "the ordered scratch copy is deleted"


def test_dashboard_layout_reads_which_row_groups_the_zonemap_skips(tmp_path):
    """Several row groups (122,880 rows each): ordered by code, one holds the code; in no order, all do."""
    con = duckdb.connect(str(tmp_path / "rg.duckdb"))
    con.execute("CREATE SCHEMA marts")
    rows = "SELECT lpad((i % 9000)::VARCHAR, 8, '0') AS hs8, i FROM range(500000) t(i)"
    con.execute(f"CREATE TABLE marts.scattered AS {rows}")
    con.execute(f"CREATE TABLE marts.ordered AS {rows} ORDER BY hs8")
    con.execute("CHECKPOINT")
    assert dashboard.layout(con, "marts.scattered", "00005000") == {"rows": 500000, "row_groups": 5, "row_groups_not_skipped": 5}
    assert dashboard.layout(con, "marts.ordered", "00005000") == {"rows": 500000, "row_groups": 5, "row_groups_not_skipped": 1}
    con.close()
