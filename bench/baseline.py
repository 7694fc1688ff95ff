#!/usr/bin/env python3
"""The floor: the same work as the project build, hand-written in DuckDB, no orchestration.

From the GACC downloads in <landing>/exports/ to the two marts the project serves:

  1. transcode every file GB18030 -> UTF-8 (whole files, one process per core);
  2. read them with a few read_csv statements: one per distinct header line (the Chinese
     header, and each English spelling), many files per statement, straight into one
     typed table (numbers without thousands separators, codes as text, YYYYMM -> month);
  3. marts.fct_exports_monthly: month x hs8 x partner_code, the latest file's row of each
     key (files are ordered as the project orders loads: modification time, then path),
     quantities converted to the code's declared first unit, quantity_kg for kg codes,
     value_usd; partner_iso3 from the partner list;
  4. marts.export_growth_monthly: per month x hs8 x partner_iso3 plus the world (WLD),
     mom / yoy against the calendar month (month - 1, month - 12 months), year-to-date
     when every month of the year so far is loaded, prior-year YTD, unit value, share of
     world: the same definitions as dbt/models/marts/export_growth_monthly.sql.

`--memory-limit 2GB` runs it under a DuckDB memory limit (the project's is 1GB by default):
what does not fit spills to disk, and the JSON says how much (spill_peak_bytes) or, when it
runs out of memory or disk, where (error, failed_in; exit status 3).

What it leaves out, because the project does it and a floor does not need it: lineage
columns, per-file validation and rejection messages, the audit tables, dbt tests, the
quality gate, publishing a copy, Parquet/charts/docs. It handles the download grain the
bench generates (USD files, hs8 x partner rows); regime/province grains and CNY files
are out of its scope.

Prints one JSON line with the timings. Usage:
    .venv/bin/python bench/baseline.py LANDING OUT.duckdb [--work DIR] [--keep-utf8]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "dbt" / "seeds"

# header text -> canonical column (the columns the marts need, and the ones read as they come)
HEADERS = {
    "数据年月": "period", "Date of data": "period",
    "商品编码": "hs8", "Commodity code": "hs8",
    "商品名称": "commodity_name", "Commodity": "commodity_name",
    "贸易伙伴编码": "partner_code", "Trading partner code": "partner_code",
    "贸易伙伴名称": "partner_name", "Trading partner": "partner_name",
    "第一数量": "quantity", "Quantity": "quantity",
    "第一计量单位": "unit", "Unit": "unit",
    "第二数量": "quantity2", "Supplementary Quantity": "quantity2", "Supplimentary Quantity": "quantity2",
    "第二计量单位": "unit2", "Supplementary Unit": "unit2", "Supplimentary Unit": "unit2",
    "美元": "value_usd", "US dollar": "value_usd",
}


def _transcode(job: tuple[str, str]) -> int:
    src, dst = job
    data = Path(src).read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("gb18030")
    Path(dst).write_text(text, encoding="utf-8", newline="")
    return len(data)


def landing_files(landing: Path) -> list[Path]:
    """The downloads in load order: oldest modification time first, then path."""
    files = [p for p in (landing / "exports").rglob("*") if p.is_file() and p.suffix.lower() in (".csv", ".txt")]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.relative_to(landing).as_posix()))


def transcode_all(files: list[Path], work: Path, jobs: int) -> list[Path]:
    work.mkdir(parents=True, exist_ok=True)
    out = [work / f"{i:07d}_{p.name}" for i, p in enumerate(files)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(_transcode, [(str(a), str(b)) for a, b in zip(files, out)], chunksize=16))
    return out


def _header(path: Path) -> tuple[str, ...]:
    with path.open("r", encoding="utf-8", newline="") as handle:
        return tuple(next(csv.reader(io.StringIO(handle.readline()))))


def build(landing: Path, out_db: Path, work: Path, jobs: int, keep_utf8: bool, memory_limit: str | None = None) -> dict:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    files = landing_files(landing)
    utf8 = transcode_all(files, work, jobs)
    timings["transcode_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    out_db.unlink(missing_ok=True)
    con = duckdb.connect(str(out_db))
    spill = SpillSampler(Path(f"{out_db}.tmp"))  # DuckDB's own default for a database file, named here to be sampled
    con.execute(f"SET temp_directory = '{spill.directory}'")
    if memory_limit:  # a budget instead of DuckDB's default (80% of RAM): what does not fit spills to disk
        con.execute(f"SET memory_limit = '{memory_limit}'")
    spill.start()
    try:
        return _build_marts(con, groups_of(utf8), timings, t0, t, spill, len(files))
    except duckdb.Error as exc:  # out of memory or of disk under a memory limit: say where, and what it had spilled
        # the first step without a time is the one that failed
        failed_in = next((step for key, step in _STEPS if key not in timings), "checkpoint")
        return {"files": len(files), "error": str(exc).splitlines()[0], "failed_in": failed_in,
                **{k: round(v, 3) for k, v in timings.items()}, "total_s": round(time.perf_counter() - t0, 3),
                "spill_peak_bytes": spill.stop()}
    finally:
        con.close()
        spill.stop()
        shutil.rmtree(spill.directory, ignore_errors=True)
        if not keep_utf8:
            shutil.rmtree(work, ignore_errors=True)


def groups_of(utf8: list[Path]) -> dict[tuple[str, ...], list[tuple[int, Path]]]:
    """The UTF-8 copies by header line, each with its place in the load order."""
    groups: dict[tuple[str, ...], list[tuple[int, Path]]] = {}
    for seq, path in enumerate(utf8):
        groups.setdefault(_header(path), []).append((seq, path))
    return groups


# (timing key, step name): the steps of _build_marts in order
_STEPS = (("read_s", "read"), ("fct_s", "fct_exports_monthly"), ("growth_s", "export_growth_monthly"))


class SpillSampler:
    """The largest size DuckDB's temp directory reached, sampled from a thread (DuckDB releases
    the GIL while it executes)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.peak = 0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _size(self) -> int:
        try:
            return sum(e.stat().st_size for e in os.scandir(self.directory) if e.is_file())
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._done.wait(0.5):
            self.peak = max(self.peak, self._size())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.peak = max(self.peak, self._size())
        return self.peak


def _build_marts(con, groups, timings: dict, t0: float, t: float, spill: SpillSampler, files: int) -> dict:
    con.execute("SET preserve_insertion_order = false")
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute("""CREATE TEMP TABLE rows (file_seq INTEGER, month DATE, hs8 VARCHAR, partner_code VARCHAR,
                   quantity DECIMAL(18, 4), unit VARCHAR, value_usd DECIMAL(18, 4))""")
    for header, members in groups.items():
        names = [HEADERS.get(h.strip(), f"_col{i}") for i, h in enumerate(header)]
        if names and not header[-1].strip():
            names.pop()  # the trailing comma's empty column
        columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in names) + "}"
        con.execute("CREATE OR REPLACE TEMP TABLE _files (file_seq INTEGER, filename VARCHAR)")
        con.executemany("INSERT INTO _files VALUES (?, ?)", [(seq, str(p)) for seq, p in members])
        # Thousands separators: ',' removed; numbers to DECIMAL(18, 4) (int64-backed: DuckDB's
        # VARCHAR -> DECIMAL(38, x) cast is far slower), then summed exactly.
        con.execute(
            f"""INSERT INTO rows
            SELECT f.file_seq,
                   make_date(CAST(left(trim(period), 4) AS INT), CAST(substr(trim(period), 5, 2) AS INT), 1),
                   trim(hs8), lpad(trim(partner_code), 3, '0'),
                   CAST(replace(quantity, ',', '') AS DECIMAL(18, 4)), lower(trim(unit)),
                   CAST(replace(value_usd, ',', '') AS DECIMAL(18, 4))
            FROM read_csv($files, header = true, auto_detect = false, columns = {columns},
                          delim = ',', quote = '"', escape = '"', filename = true) r
            JOIN _files f USING (filename)""",
            {"files": [str(p) for _, p in members]},
        )
    timings["read_s"] = time.perf_counter() - t
    rows = con.execute("SELECT count(*) FROM rows").fetchone()[0]

    t = time.perf_counter()
    con.execute(f"""
        CREATE TEMP TABLE commodity AS SELECT hs8, unit1_code AS declared_unit_code
            FROM read_csv('{SEEDS / 'gacc_commodities.csv'}', header = true, all_varchar = true);
        CREATE TEMP TABLE unit AS SELECT unit_code, base_unit_code, CAST(to_base_factor AS DECIMAL(18, 6)) AS to_base
            FROM read_csv('{SEEDS / 'gacc_units.csv'}', header = true, all_varchar = true);
        CREATE TEMP TABLE alias AS SELECT DISTINCT lower(trim(alias)) AS alias, unit_code
            FROM read_csv('{SEEDS / 'gacc_unit_aliases.csv'}', header = true, all_varchar = true);
        CREATE TEMP TABLE partner AS SELECT partner_code, partner_iso3
            FROM read_csv('{SEEDS / 'gacc_partners.csv'}', header = true, all_varchar = true);

        CREATE TABLE marts.fct_exports_monthly AS
        WITH latest AS (
            -- the latest file's row of every key (a later download revises an earlier one)
            SELECT month, hs8, partner_code,
                   arg_max(quantity, file_seq) AS quantity, arg_max(unit, file_seq) AS unit,
                   arg_max(value_usd, file_seq) AS value_usd
            FROM rows GROUP BY ALL
        ), converted AS (
            SELECT l.*, coalesce(c.declared_unit_code, a.unit_code) AS unit_code,
                   CASE WHEN a.unit_code = coalesce(c.declared_unit_code, a.unit_code) THEN 1
                        WHEN fu.base_unit_code = du.base_unit_code THEN fu.to_base / du.to_base END AS factor
            FROM latest l
            LEFT JOIN commodity c USING (hs8)
            LEFT JOIN alias a ON a.alias = l.unit
            LEFT JOIN unit fu ON fu.unit_code = a.unit_code
            LEFT JOIN unit du ON du.unit_code = coalesce(c.declared_unit_code, a.unit_code)
        )
        SELECT month, hs8, partner_code, coalesce(p.partner_iso3, 'XXX') AS partner_iso3,
               CAST(CASE WHEN unit_code = '09' THEN quantity * factor END AS DECIMAL(38, 3)) AS quantity_kg,
               CAST(quantity * factor AS DECIMAL(38, 3)) AS quantity,
               unit_code,
               CAST(value_usd AS DECIMAL(38, 2)) AS value_usd
        FROM converted LEFT JOIN partner p USING (partner_code);
    """)
    timings["fct_s"] = time.perf_counter() - t

    t = time.perf_counter()
    con.execute("""
        CREATE TABLE marts.export_growth_monthly AS
        WITH by_partner AS (
            SELECT month, hs8, partner_iso3, sum(quantity_kg) AS quantity_kg, sum(value_usd) AS value_usd
            FROM marts.fct_exports_monthly GROUP BY ALL
        ), series AS (
            SELECT * FROM by_partner
            UNION ALL
            SELECT month, hs8, 'WLD', sum(quantity_kg), sum(value_usd) FROM by_partner GROUP BY ALL
        ), loaded_months AS (
            SELECT month, month(month) AS month_of_year,
                   count(*) OVER (PARTITION BY year(month) ORDER BY month) AS months_loaded_ytd
            FROM (SELECT DISTINCT month FROM marts.fct_exports_monthly)
        ), with_ytd AS (
            SELECT s.*,
                   sum(s.quantity_kg) OVER (PARTITION BY s.hs8, s.partner_iso3, year(s.month) ORDER BY s.month
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ytd_raw,
                   coalesce(lm.months_loaded_ytd = lm.month_of_year, false) AS ytd_complete
            FROM series s LEFT JOIN loaded_months lm USING (month)
        ), prior_ytd AS (
            SELECT cur.month, cur.hs8, cur.partner_iso3,
                   CASE WHEN year(prev.month) = year(cur.month) - 1 THEN prev.ytd_raw ELSE 0 END AS prior_ytd_kg
            FROM with_ytd cur
            ASOF LEFT JOIN with_ytd prev
              ON prev.hs8 = cur.hs8 AND prev.partner_iso3 = cur.partner_iso3
             AND prev.month <= cur.month - INTERVAL 12 MONTH
        ), compared AS (
            SELECT cur.*, pm.quantity_kg AS pm_kg, pm.value_usd AS pm_usd, py.quantity_kg AS py_kg,
                   py.value_usd AS py_usd, w.quantity_kg AS world_kg, pr.prior_ytd_kg,
                   coalesce(plm.months_loaded_ytd = plm.month_of_year, false) AS prior_ytd_complete
            FROM with_ytd cur
            LEFT JOIN series pm ON pm.hs8 = cur.hs8 AND pm.partner_iso3 = cur.partner_iso3
                               AND pm.month = cur.month - INTERVAL 1 MONTH
            LEFT JOIN series py ON py.hs8 = cur.hs8 AND py.partner_iso3 = cur.partner_iso3
                               AND py.month = cur.month - INTERVAL 12 MONTH
            LEFT JOIN series w ON w.hs8 = cur.hs8 AND w.partner_iso3 = 'WLD' AND w.month = cur.month
            LEFT JOIN prior_ytd pr ON pr.hs8 = cur.hs8 AND pr.partner_iso3 = cur.partner_iso3 AND pr.month = cur.month
            LEFT JOIN loaded_months plm ON plm.month = cur.month - INTERVAL 12 MONTH
        )
        SELECT CAST(month AS DATE) AS month, hs8, partner_iso3,
               CAST(quantity_kg AS DECIMAL(38, 3)) AS quantity_kg,
               CAST(value_usd AS DECIMAL(38, 2)) AS value_usd,
               CASE WHEN pm_kg IS NULL OR pm_kg = 0 OR quantity_kg IS NULL THEN NULL
                    ELSE round(100.0 * (CAST(quantity_kg AS DOUBLE) / CAST(pm_kg AS DOUBLE) - 1), 6) END AS mom_pct,
               CASE WHEN py_kg IS NULL OR py_kg = 0 OR quantity_kg IS NULL THEN NULL
                    ELSE round(100.0 * (CAST(quantity_kg AS DOUBLE) / CAST(py_kg AS DOUBLE) - 1), 6) END AS yoy_pct,
               CAST(CASE WHEN ytd_complete THEN ytd_raw END AS DECIMAL(38, 3)) AS ytd_quantity_kg,
               CASE WHEN ytd_complete AND prior_ytd_complete AND prior_ytd_kg IS NOT NULL AND prior_ytd_kg <> 0
                         AND ytd_raw IS NOT NULL
                    THEN round(100.0 * (CAST(ytd_raw AS DOUBLE) / CAST(prior_ytd_kg AS DOUBLE) - 1), 6) END AS ytd_yoy_pct,
               CASE WHEN quantity_kg > 0 THEN CAST(value_usd / quantity_kg AS DOUBLE) END AS unit_value_usd_per_kg,
               CASE WHEN world_kg > 0 THEN CAST(100.0 * quantity_kg / world_kg AS DOUBLE) END AS share_of_world_pct,
               CASE WHEN pm_usd IS NULL OR pm_usd = 0 OR value_usd IS NULL THEN NULL
                    ELSE round(100.0 * (CAST(value_usd AS DOUBLE) / CAST(pm_usd AS DOUBLE) - 1), 6) END AS value_mom_pct,
               CASE WHEN py_usd IS NULL OR py_usd = 0 OR value_usd IS NULL THEN NULL
                    ELSE round(100.0 * (CAST(value_usd AS DOUBLE) / CAST(py_usd AS DOUBLE) - 1), 6) END AS value_yoy_pct
        FROM compared
    """)
    timings["growth_s"] = time.perf_counter() - t
    counts = con.execute(
        "SELECT (SELECT count(*) FROM marts.fct_exports_monthly), (SELECT count(*) FROM marts.export_growth_monthly)"
    ).fetchone()
    con.execute("CHECKPOINT")
    timings["total_s"] = time.perf_counter() - t0
    return {"files": files, "rows": rows, "fct_rows": counts[0], "growth_rows": counts[1],
            **{k: round(v, 3) for k, v in timings.items()}, "spill_peak_bytes": spill.stop()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("landing", type=Path)
    parser.add_argument("out_db", type=Path)
    parser.add_argument("--work", type=Path, help="where the UTF-8 copies go (default: OUT_DB's folder/utf8)")
    parser.add_argument("--keep-utf8", action="store_true", help="keep the UTF-8 copies (bench/run.py reads them)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="transcoding processes")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 1GB (default: DuckDB's, 80%% of RAM)")
    args = parser.parse_args(argv)
    work = args.work or args.out_db.parent / "utf8"
    shutil.rmtree(work, ignore_errors=True)
    result = build(args.landing, args.out_db, work, args.jobs, args.keep_utf8, args.memory_limit)
    print(json.dumps(result))
    return 3 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
