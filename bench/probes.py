#!/usr/bin/env python3
"""Measurements bench/run.py runs in their own process (so each has a clean memory and clock).

    probes.py ingest LANDING WORKDIR [--limit-files N] [--per-file]
        the project's ingest (dagster_project.lib.ingest.landing.ingest_landing) on a fresh DuckDB
        working copy, with a breakdown of where the time goes (SHA-256, transcoding, each
        kind of SQL statement), the final CHECKPOINT included (read_csv's figure includes one
        too). --per-file loads every file through the per-file gate (CUSTOMS_INGEST_BATCH=0),
        to show what batching many files per statement buys.
    probes.py ingest_design LANDING WORKDIR [--limit-files N]
        what the ingest's work costs, and what a raw table of text would cost, on the same files
        (bench/RESULTS.md, the reading of the 08:56 national run): CPU per million rows of
        SHA-256 and of transcoding; DuckDB's read_csv of the UTF-8 copies into a table (the
        reference); the batch path's statements on the staged rows (parse into the checked
        table, then its per-file verdict) against the verdict computed straight over the parse
        with the rows inserted as text (load id, row number and the file's own columns).
    probes.py readcsv LANDING OUT.duckdb
        DuckDB's own read_csv on the same rows as UTF-8 (transcoded first, untimed): all files of a header in one
        statement (what DuckDB can do), and one statement per file (what a per-file load pays).
    probes.py checks WAREHOUSE.duckdb
        the quality gate's checks (dagster_project.lib.quality.checks.run_checks) on a copy of a
        built warehouse, timed one by one.
    probes.py gate_events DAGSTER_HOME RUN_ID
        each quality-gate check's seconds as recorded in that run's event log (no re-run)
    probes.py compare BASELINE.duckdb PROJECT.duckdb
        do the baseline's marts hold the project's figures? (row counts and differing rows)
    probes.py dashboard WAREHOUSE.duckdb SCRATCH_DIR [--repeats N]
        what a dashboard waits for: one code's monthly series from the served file, cold and
        warm, against the same rows ordered by code and against marts.export_growth_rare_earths
        (bench/dashboard.py)

Each prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402



class TimedConnection:
    """A DuckDB connection that adds up the time of each kind of statement."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    @staticmethod
    def kind(sql: str) -> str:
        text = " ".join(sql.split())
        m = re.match(r"(CREATE OR REPLACE TEMP TABLE|CREATE OR REPLACE TEMP MACRO|INSERT INTO|SELECT|DELETE FROM|DROP TABLE"
                     r"|BEGIN|COMMIT|ROLLBACK|CREATE)\s*(\S*)", text, re.I)
        if not m:
            return text[:40]
        head, obj = m.group(1).upper(), m.group(2)
        if head == "SELECT":
            # the validation queries: name them by what they look at
            where = re.search(r"WHERE (.{0,60})", text)
            return "SELECT " + (where.group(1) if where else text[7:60])
        return f"{head} {obj}".strip()

    def execute(self, sql, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self._con.execute(sql, *args, **kwargs)
        finally:
            key = self.kind(sql)
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - started
            self.calls[key] = self.calls.get(key, 0) + 1

    def __getattr__(self, name):
        return getattr(self._con, name)


def probe_ingest(landing: Path, work: Path, limit_files: int | None, per_file: bool) -> dict:
    from dagster_project.lib.ingest import batch as ingest_batch, landing as ingest, landing_files, landing_hashes, staged_csv
    from dagster_project.lib.warehouse import database as db

    timers = {"sha256": 0.0, "transcode": 0.0, "setup": 0.0}

    def timed(name, fn):
        def wrapper(*a, **k):
            started = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timers[name] += time.perf_counter() - started
        return wrapper

    # each name is patched in the module that looks it up (they import it by name)
    landing_hashes.sha256_of = timed("sha256", landing_hashes.sha256_of)
    staged_csv.transcode_to_utf8 = timed("transcode", staged_csv.transcode_to_utf8)  # the per-file path's
    ingest_batch.transcode_to_utf8 = timed("transcode", ingest_batch.transcode_to_utf8)
    # once per run, not per file: the reference tables and macros
    ingest.load_reference_tables = timed("setup", ingest.load_reference_tables)

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    con = duckdb.connect(str(work / "ingest_probe.duckdb"))
    con.execute(db.RAW_DDL)
    files = landing_files.discover(landing)
    only = [f.rel for f in files[:limit_files]] if limit_files else None
    timed_con = TimedConnection(con)
    started = time.perf_counter()
    report = ingest.ingest_landing(timed_con, landing, work / "staging", only=only, batch=not per_file)
    timed_con.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    con.close()
    sql_total = sum(timed_con.seconds.values())
    top = sorted(timed_con.seconds.items(), key=lambda kv: -kv[1])[:12]
    return {
        "files": len(report.loaded), "rejected": len(report.rejected), "rows": report.rows_loaded, "hashed": report.hashed,
        "seconds": round(seconds, 3), "rows_per_s": round(report.rows_loaded / seconds, 1) if seconds else None,
        "setup_s": round(timers["setup"], 3),
        "per_file_rows_per_s": round(report.rows_loaded / (seconds - timers["setup"]), 1),
        "sha256_s": round(timers["sha256"], 6), "transcode_s": round(timers["transcode"], 3),
        "sql_s": round(sql_total, 3), "other_s": round(seconds - sql_total - timers["sha256"] - timers["transcode"], 3),
        "sql_top": [[k, round(v, 3), timed_con.calls[k]] for k, v in top],
        "per_file": per_file, "batched_files": report.batched,
        "first_rejection": report.rejected[0].reason if report.rejected else None,
    }


def probe_ingest_design(landing: Path, work: Path, limit_files: int | None) -> dict:
    import datetime as dt
    import itertools
    import resource

    from dagster_project.lib.ingest import batch as ib, landing_files, reference_data, staged_csv, transcode
    from dagster_project.lib.months import first_of_month

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    shutil.rmtree(work, ignore_errors=True)
    (work / "staging").mkdir(parents=True)
    files = [f for f in landing_files.discover(landing) if f.rel.startswith("exports/")][:limit_files]
    today = dt.date.today()
    clock: dict[str, list[float]] = {}

    def timed(name: str, fn, *args):
        c, w = cpu(), time.perf_counter()
        try:
            return fn(*args)
        finally:
            wall, used = time.perf_counter() - w, cpu() - c
            clock.setdefault(name, [0.0, 0.0])
            clock[name][0] += wall
            clock[name][1] += used

    for f in files:
        timed("sha256", transcode.sha256_of, f.path)
    candidates = [ib.Candidate(f, "-", 0, f"load{i:06d}") for i, f in enumerate(files)]
    ready = timed("transcode", lambda: [c for c in candidates if ib._prepare(c, work / "staging", today)])
    groups = [list(g) for _, g in itertools.groupby(sorted(ready, key=lambda c: c.stage_columns), key=lambda c: c.stage_columns)]

    con = duckdb.connect(str(work / "design.duckdb"))
    for i, group in enumerate(groups):  # the reference: what DuckDB alone does with the same rows
        timed("read_csv into a table", con.execute, f"CREATE TABLE ref{i} AS SELECT * FROM read_csv($p, header=true, "
              f"auto_detect=false, columns={staged_csv.columns_spec(group[0].stage_columns)})", {"p": [str(c.shape.path) for c in group]})
    timed("read_csv into a table", con.execute, "CHECKPOINT")
    rows = sum(con.execute(f"SELECT count(*) FROM ref{i}").fetchone()[0] for i in range(len(groups)))
    reference_data.load_reference_tables(con)
    con.execute("CREATE TEMP TABLE _bmeta (gid INT, fid INT, name_start DATE, name_end DATE, first_rowid BIGINT)")
    con.execute("CREATE TABLE raw_text (load_id VARCHAR, row_number BIGINT, period VARCHAR, hs8 VARCHAR, commodity_name VARCHAR, "
                "partner_code VARCHAR, partner_name VARCHAR, quantity VARCHAR, unit VARCHAR, quantity2 VARCHAR, unit2 VARCHAR, value VARCHAR)")
    params = {"current_month": first_of_month(today)}
    gid = 0
    verdicts_equal = True  # the text design's per-file verdicts are today's
    for group in groups:
        columns = group[0].stage_columns
        for start in range(0, len(group), ib.BATCH_FILES):
            batch = group[start:start + ib.BATCH_FILES]
            gid += 1
            con.execute(ib._BROWS_DDL)  # empty, as BatchLoader.load starts each batch
            timed("stage (both)", con.execute, ib.stage_sql(columns), {"paths": [str(c.shape.path) for c in batch]})
            con.executemany("INSERT INTO _bmeta VALUES (?, ?, ?, ?, NULL)", [(gid, i, *(c.name_period or (None, None))) for i, c in enumerate(batch)])
            con.execute(ib.FIRST_ROWID_SQL, {"gid": gid})
            parse = ib._row_sql(columns, gid)
            timed("today: parse into the checked table", con.execute, f"INSERT INTO _brows ({ib.ROW_COLUMNS}) {parse}")
            today_verdict = timed("today: verdict over the checked table", con.execute, ib.file_stats_sql(),
                                  {**params, "gid": gid}).fetchall()
            # the parse's columns under the checked table's names (the two *_key columns differ)
            over_parse = f"(SELECT * RENAME (regime_code_key AS regime_key, province_code_key AS province_key) FROM ({parse}))"
            text_verdict = timed("text: verdict over the parse", con.execute, ib.file_stats_sql(over_parse),
                                 {**params, "gid": gid}).fetchall()
            verdicts_equal &= sorted(today_verdict) == sorted(text_verdict)
            col = lambda name: f's."{name}"' if name in columns else "NULL"  # noqa: E731
            timed("text: insert into a raw table of text", con.execute, f"""INSERT INTO raw_text
                  SELECT 'load' || m.fid, s.rowid - m.first_rowid + 1, {col('period')}, s.hs8, {col('commodity_name')},
                         s.partner_code, {col('partner_name')}, {col('quantity')}, {col('unit')}, {col('quantity2')},
                         {col('unit2')}, {col('value_usd') if 'value_usd' in columns else col('value_cny')}
                  FROM _bstage s JOIN _bmeta m ON m.fid = s.file_index AND m.gid = {gid}""")
    timed("text: insert into a raw table of text", con.execute, "CHECKPOINT")
    text_rows = con.execute("SELECT count(*) FROM raw_text").fetchone()[0]
    con.close()
    per_million = {k: {"wall_s": round(w / rows * 1e6, 3), "cpu_s": round(c / rows * 1e6, 3)} for k, (w, c) in clock.items()}
    return {"files": len(files), "rows": rows, "text_rows": text_rows, "verdicts_equal": verdicts_equal,
            "per_million_rows": per_million}


def _header(path: Path) -> tuple[str, ...]:
    with path.open("r", encoding="utf-8", newline="") as handle:
        return tuple(next(csv.reader(io.StringIO(handle.readline()))))


def probe_readcsv(landing: Path, out_db: Path) -> dict:
    """DuckDB read_csv on UTF-8 copies of the landing files (transcoded first, not timed)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from baseline import landing_files, transcode_all

    work = out_db.parent / (out_db.stem + "_utf8")
    shutil.rmtree(work, ignore_errors=True)
    files = transcode_all(landing_files(landing), work, jobs=2)
    groups: dict[tuple[str, ...], list[Path]] = {}
    for path in files:
        groups.setdefault(_header(path), []).append(path)
    result = {"files": len(files)}
    warm = duckdb.connect()
    warm.execute("SELECT count(*) FROM read_csv($f, all_varchar = true)", {"f": str(files[0])}).fetchall()
    warm.close()
    for mode in ("grouped", "per_file"):
        out_db.unlink(missing_ok=True)
        con = duckdb.connect(str(out_db))
        started = time.perf_counter()
        rows = 0
        for g, (header, members) in enumerate(groups.items()):
            names = [f"c{i}" for i in range(len(header) - (0 if header[-1].strip() else 1))]
            columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in names) + "}"
            options = f"header = true, auto_detect = false, columns = {columns}, delim = ',', quote = '\"', escape = '\"'"
            table = f"t{g}"
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv($f, {options}) LIMIT 0", {"f": str(members[0])})
            batches = [members] if mode == "grouped" else [[m] for m in members]
            for batch in batches:
                con.execute(f"INSERT INTO {table} SELECT * FROM read_csv($f, {options})", {"f": [str(p) for p in batch]})
            rows += con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        con.execute("CHECKPOINT")
        seconds = time.perf_counter() - started
        con.close()
        result[mode] = {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds, 1)}
    out_db.unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    return result


def probe_checks(warehouse: Path) -> dict:
    started = time.perf_counter()
    from dagster_project.lib.quality.gx_suites import run_checks
    import great_expectations  # noqa: F401  (the import is part of the gate's cost)

    import_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "w.duckdb"
        shutil.copyfile(warehouse, copy)
        con = duckdb.connect(str(copy))
        started = time.perf_counter()
        outcomes = run_checks(con, docs_dir=Path(tmp) / "docs", rejected_files=[])
        seconds = time.perf_counter() - started
        timed = []
        for o in outcomes:
            # the population query alone (DuckDB's share of the check)
            t = time.perf_counter()
            con.execute(o.check.population_sql).fetchall()
            timed.append([o.check.name, o.check.severity, o.passed, round(o.seconds, 3),
                          round(time.perf_counter() - t, 3), o.population_rows])
        con.close()
    return {"import_s": round(import_s, 3), "run_checks_s": round(seconds, 3), "checks": timed,
            "failed": [c[0] for c in timed if not c[2]]}


def probe_gate_events(dagster_home: Path, run_id: str) -> dict:
    """Each quality-gate check's own seconds, as the gate recorded them in the run's event log."""
    import os

    os.environ["DAGSTER_HOME"] = str(dagster_home.resolve())
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.get() as instance:
        records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=10_000).records
        checks = []
        for record in records:
            entry = record.event_log_entry
            data = entry.dagster_event.event_specific_data
            # the gate's checks run in one step or, in a run of part of the assets, several
            # (quality_gate, quality_gate_2, ...)
            if not re.fullmatch(r"quality_gate(_\d+)?", entry.step_key or "") or "seconds" not in data.metadata:
                continue
            md = data.metadata
            checks.append([data.check_name, md["severity"].value if "severity" in md else None, bool(data.passed),
                           float(md["seconds"].value), None,
                           md["population_rows"].value if "population_rows" in md else None])
    return {"checks": checks, "failed": [c[0] for c in checks if not c[2]], "run_checks_s": round(sum(c[3] for c in checks), 3)}


def probe_compare(baseline: Path, project: Path) -> dict:
    con = duckdb.connect()
    con.execute(f"ATTACH '{baseline}' AS b (READ_ONLY)")
    con.execute(f"ATTACH '{project}' AS p (READ_ONLY)")
    out = {}
    fct_cols = "month, hs8, partner_code, partner_iso3, quantity_kg, quantity, unit_code, value_usd"
    growth_cols = ("month, hs8, partner_iso3, quantity_kg, value_usd, round(mom_pct, 4), round(yoy_pct, 4), ytd_quantity_kg, "
                   "round(ytd_yoy_pct, 4), round(unit_value_usd_per_kg, 6), round(share_of_world_pct, 6), "
                   "round(value_mom_pct, 4), round(value_yoy_pct, 4)")
    for table, cols in (("fct_exports_monthly", fct_cols), ("export_growth_monthly", growth_cols)):
        nb, np_ = (con.execute(f"SELECT count(*) FROM {db}.marts.{table}").fetchone()[0] for db in ("b", "p"))
        only_b = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM b.marts.{table} EXCEPT ALL "
                             f"SELECT {cols} FROM p.marts.{table})").fetchone()[0]
        only_p = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM p.marts.{table} EXCEPT ALL "
                             f"SELECT {cols} FROM b.marts.{table})").fetchone()[0]
        out[table] = {"baseline_rows": nb, "project_rows": np_, "only_in_baseline": only_b, "only_in_project": only_p}
    out["identical"] = all(v["only_in_baseline"] == 0 and v["only_in_project"] == 0 for v in out.values() if isinstance(v, dict))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="probe", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("landing", type=Path)
    p.add_argument("work", type=Path)
    p.add_argument("--limit-files", type=int)
    p.add_argument("--per-file", action="store_true")
    p = sub.add_parser("ingest_design")
    p.add_argument("landing", type=Path)
    p.add_argument("work", type=Path)
    p.add_argument("--limit-files", type=int)
    p = sub.add_parser("readcsv")
    p.add_argument("landing", type=Path)
    p.add_argument("out_db", type=Path)
    p = sub.add_parser("checks")
    p.add_argument("warehouse", type=Path)
    p = sub.add_parser("gate_events")
    p.add_argument("dagster_home", type=Path)
    p.add_argument("run_id")
    p = sub.add_parser("compare")
    p.add_argument("baseline", type=Path)
    p.add_argument("project", type=Path)
    p = sub.add_parser("dashboard")
    p.add_argument("warehouse", type=Path)
    p.add_argument("scratch_dir", type=Path)
    p.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.probe == "ingest":
        result = probe_ingest(args.landing, args.work, args.limit_files, args.per_file)
    elif args.probe == "ingest_design":
        result = probe_ingest_design(args.landing, args.work, args.limit_files)
    elif args.probe == "readcsv":
        result = probe_readcsv(args.landing, args.out_db)
    elif args.probe == "gate_events":
        result = probe_gate_events(args.dagster_home, args.run_id)
    elif args.probe == "checks":
        result = probe_checks(args.warehouse)
    elif args.probe == "dashboard":
        sys.path.insert(0, str(ROOT / "bench"))
        import dashboard

        result = dashboard.measure(args.warehouse.resolve(), args.scratch_dir, repeats=args.repeats)
    else:
        result = probe_compare(args.baseline, args.project)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
