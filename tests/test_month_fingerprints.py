"""The per-month fingerprints dbt keeps for the large marts (audit.mart_month_fingerprints) are
what hashing the rows gives, and the Parquet export rewrites exactly the years they say changed.

Real builds (the session's sample build, and a full refresh through dbt), real exports.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.serving import parquet_export as pe
from dagster_project.lib.settings import DBT_PROJECT_DIR, VENV_BIN

LARGE = ("fct_exports_monthly", "export_growth_monthly")


def recorded_equals_direct(path: Path) -> dict[str, int]:
    """Months per table, after checking every recorded month against the rows themselves."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        months = {}
        for table in LARGE:
            direct = con.execute(f"SELECT month, count(*), sum(hash(t)) FROM marts.{table} t GROUP BY 1 ORDER BY 1").fetchall()
            recorded = con.execute(f"SELECT month, row_count, row_hash_sum FROM {pe.MONTH_FINGERPRINTS} "
                                   "WHERE table_name = $t ORDER BY 1", {"t": table}).fetchall()
            assert recorded == direct, table
            months[table] = len(recorded)
        return months
    finally:
        con.close()


@pytest.fixture
def served_copy(sample_build, tmp_path) -> Path:
    copy = tmp_path / "served.duckdb"
    shutil.copyfile(sample_build.warehouse, copy)
    return copy


def test_recorded_fingerprints_are_the_rows_hashes(served_copy):
    months = recorded_equals_direct(served_copy)
    assert months["fct_exports_monthly"] == 24 and months["export_growth_monthly"] >= 24
    con = duckdb.connect(str(served_copy), read_only=True)
    try:
        for table in LARGE:
            relation = f"marts.{table}"
            columns = pe._columns(con, "marts", table)
            # the export's per-year fingerprints: from the recorded months, and from hashing every row
            assert pe._month_fingerprint_rows(con, "marts", table, relation) is not None
            assert pe._fingerprints(con, relation, columns, by_year=True, table=table) == \
                pe._fingerprints(con, relation, columns, by_year=True)
    finally:
        con.close()


def test_the_export_rewrites_the_years_the_recorded_months_say_changed(served_copy, tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    con = duckdb.connect(str(served_copy))
    try:
        first = pe.export_table(con, "fct_exports_monthly", out, partition_threshold_rows=100)
        assert first.partitioned and sorted(p.name for p in first.path.iterdir()) == ["year=2024", "year=2025"]
        assert pe.export_table(con, "fct_exports_monthly", out, partition_threshold_rows=100).reused == first.files

        # dbt rebuilt June 2025 with other figures: the rows and the month's recorded fingerprint change together
        con.execute("UPDATE marts.fct_exports_monthly SET quantity_kg = quantity_kg + 1 WHERE month = DATE '2025-06-01'")
        con.execute(f"""UPDATE {pe.MONTH_FINGERPRINTS} f SET row_hash_sum = s.h
                        FROM (SELECT sum(hash(t)) AS h FROM marts.fct_exports_monthly t WHERE month = DATE '2025-06-01') s
                        WHERE f.table_name = 'fct_exports_monthly' AND f.month = DATE '2025-06-01'""")
        before_2024 = (out / "fct_exports_monthly.parquet" / "year=2024").stat().st_ino
        again = pe.export_table(con, "fct_exports_monthly", out, partition_threshold_rows=100)
        assert again.reused == 1  # 2024 kept, 2025 written
        assert (out / "fct_exports_monthly.parquet" / "year=2024").stat().st_ino == before_2024
        exported = con.execute(
            f"SELECT sum(quantity_kg) FROM read_parquet('{out}/fct_exports_monthly.parquet/**/*.parquet', hive_partitioning = true)"
        ).fetchone()[0]
        assert exported == con.execute("SELECT sum(quantity_kg) FROM marts.fct_exports_monthly").fetchone()[0]

        # a month the record lacks: the export hashes the rows instead of trusting an incomplete record
        con.execute(f"DELETE FROM {pe.MONTH_FINGERPRINTS} WHERE table_name = 'fct_exports_monthly' AND month = DATE '2024-03-01'")
        assert pe._month_fingerprint_rows(con, "marts", "fct_exports_monthly", "marts.fct_exports_monthly") is None
        assert pe.export_table(con, "fct_exports_monthly", out, partition_threshold_rows=100).reused == 2
    finally:
        con.close()


def test_a_full_refresh_records_every_month_again(served_copy, tmp_path):
    # dbt writes the working copy, `$WAREHOUSE_PATH.build`
    working = served_copy.rename(tmp_path / "warehouse.duckdb.build")
    # stale records (as a model change would leave them) are forgotten by the full refresh's pre-hook
    con = duckdb.connect(str(working))
    con.execute(f"UPDATE {pe.MONTH_FINGERPRINTS} SET row_hash_sum = 0")
    con.close()
    env = dict(os.environ, WAREHOUSE_PATH=str(tmp_path / "warehouse.duckdb"), CUSTOMS_DBT_MONTHS='["2025-06-01"]',
               CUSTOMS_DBT_GROWTH_MONTHS='["2025-06-01"]')
    done = subprocess.run(
        [str(VENV_BIN / "dbt"), "run", "--full-refresh", "--select", "fct_exports_monthly", "export_growth_monthly",
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    con = duckdb.connect(str(working))
    try:
        # the hooks recorded the month the build was given; the rest is left to the serving step
        assert con.execute(f"SELECT DISTINCT month FROM {pe.MONTH_FINGERPRINTS} WHERE table_name = 'fct_exports_monthly'"
                           ).fetchall() == [(dt.date(2025, 6, 1),)]
        hashed = pe.record_missing_month_fingerprints(con)
        assert hashed["fct_exports_monthly"] == 23
        assert pe.record_missing_month_fingerprints(con) == {table: 0 for table in pe.MONTH_FINGERPRINTED}
    finally:
        con.close()
    months = recorded_equals_direct(working)
    assert months["fct_exports_monthly"] == 24


def test_the_fingerprinted_marts_are_the_models_with_the_hooks():
    hooked = sorted(p.stem for p in (DBT_PROJECT_DIR / "models").rglob("*.sql")
                    if "record_month_fingerprints(" in p.read_text() and "forget_month_fingerprints(" in p.read_text())
    assert hooked == sorted(pe.MONTH_FINGERPRINTED)
