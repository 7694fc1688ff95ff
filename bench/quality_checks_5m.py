"""Measure the quality gate (GX over DuckDB aggregates) at 5M fact rows.

Builds a warehouse whose raw layer holds N synthetic fact rows (generated in DuckDB SQL,
120 monthly loads of kg-coded HS8 codes x partners), runs the real dbt build on it, then
times `run_checks` check by check. Usage: python bench/quality_checks_5m.py [--rows 5000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from dagster_project.lib.warehouse import working_copy as wh  # noqa: E402
from dagster_project.lib.quality.gx_suites import run_checks  # noqa: E402
from dagster_project.lib.settings import Settings  # noqa: E402

LOADS_SQL = """
INSERT INTO raw.customs_loads
SELECT 'load' || m, m, 'exports/' || strftime(month, '%Y%m') || '.csv', md5(m::varchar) || md5(m::varchar), 0,
       'exports', 'gb18030', 'zh', 'USD', 'hs8,partner', 'column', month, month, 0, NULL, NULL, NULL, now()::timestamp
FROM (SELECT range AS m, (DATE '2016-01-01' + to_months(range::int))::date AS month FROM range(120))
"""

RAW_SQL = """
INSERT INTO raw.customs_rows
WITH codes AS (
    SELECT hs8, row_number() OVER (ORDER BY hs8) AS i FROM read_csv($commodities, all_varchar=true)
    WHERE unit1_code = '09' LIMIT $code_count
),
partners AS (
    SELECT partner_code, row_number() OVER (ORDER BY partner_code) AS j FROM read_csv($partners, all_varchar=true)
    WHERE partner_iso3 NOT LIKE 'X%' LIMIT $partner_count
),
months AS (SELECT range AS m, (DATE '2016-01-01' + to_months(range::int))::date AS month FROM range(120))
SELECT 'load' || m, 'exports/x.csv', 'sha', now()::timestamp,
       row_number() OVER (PARTITION BY m), 'exports', 'USD', month, month, false,
       hs8, NULL, partner_code, NULL, NULL, NULL, NULL, NULL,
       (1000 + (hash(hs8, partner_code, m) % 100000))::DECIMAL(38,4), '千克', '09', '09', 1::DECIMAL(38,6),
       0::DECIMAL(38,4), NULL,
       ((1000 + (hash(hs8, partner_code, m) % 100000)) * (20 + (i % 50)) * (1 + 0.02 * sin(m)))::DECIMAL(38,4)
FROM months, codes, partners
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "quality5m")
    parser.add_argument("--checks-only", action="store_true", help="reuse the warehouse built by an earlier run")
    args = parser.parse_args()
    partners = 25
    codes = max(1, args.rows // (120 * partners))
    settings = Settings(landing_dir=args.out / "landing", warehouse_path=args.out / "warehouse.duckdb")
    if args.checks_only:
        return measure_checks(settings, args.out, "reused", 0.0, 0.0)

    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    wh.ensure_working_copy(settings)
    started = time.perf_counter()
    con = duckdb.connect(str(settings.working_path))
    con.execute(LOADS_SQL)
    con.execute(RAW_SQL, {"commodities": str(ROOT / "dbt/seeds/gacc_commodities.csv"),
                          "partners": str(ROOT / "dbt/seeds/gacc_partners.csv"), "code_count": codes, "partner_count": partners})
    rows = con.execute("SELECT count(*) FROM raw.customs_rows").fetchone()[0]
    con.close()
    generate_s = time.perf_counter() - started

    env = dict(os.environ, WAREHOUSE_PATH=str(settings.warehouse_path), DBT_SEND_ANONYMOUS_USAGE_STATS="False")
    started = time.perf_counter()
    dbt = Path(sys.executable).with_name("dbt")
    subprocess.run([str(dbt), "build", "--quiet", "--profiles-dir", ".", "--project-dir", "."], cwd=ROOT / "dbt", env=env, check=True)
    dbt_s = time.perf_counter() - started
    return measure_checks(settings, args.out, f"{rows:,}", generate_s, dbt_s)


def measure_checks(settings: Settings, out: Path, rows: str, generate_s: float, dbt_s: float) -> int:
    con = duckdb.connect(str(settings.working_path))
    fct_rows = con.execute("SELECT count(*) FROM marts.fct_exports_monthly").fetchone()[0]
    started = time.perf_counter()
    outcomes = run_checks(con, docs_dir=out / "quality", rejected_files=[])
    checks_s = time.perf_counter() - started
    con.close()

    print(f"raw rows {rows} (generated in {generate_s:.1f} s); dbt build {dbt_s:.1f} s; fct_exports_monthly {fct_rows:,} rows")
    print(f"quality gate: {len(outcomes)} checks in {checks_s:.1f} s (GX import included); peak RSS {peak_rss_mb():,.0f} MiB")
    for o in sorted(outcomes, key=lambda o: -o.seconds):
        print(f"  {o.check.name:45s} {o.seconds:6.2f} s  population {o.population_rows:>9,}  {'pass' if o.passed else 'FAIL'} [{o.severity}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
