"""Incremental builds: a new month rebuilds its months only, and converges to a clean build."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess

from conftest import make_workspace
from gacc_files import copy_sample
from test_quality_gate import marts_hash

from dagster_project.lib.incremental import dbt_vars, growth_months


def test_growth_months_cover_next_month_next_year_and_ytd():
    months = growth_months([dt.date(2025, 6, 1)])
    assert months[0] == dt.date(2025, 6, 1) and months[-1] == dt.date(2026, 12, 1)
    assert dt.date(2025, 7, 1) in months and dt.date(2026, 6, 1) in months and dt.date(2025, 5, 1) not in months
    assert dbt_vars(None) is None
    assert dbt_vars([dt.date(2025, 6, 1)])["months"] == ["2025-06-01"]


def test_an_incremental_build_equals_a_clean_build(tmp_path):
    history = [f"2024{m:02d}" for m in range(1, 13)] + [f"2025{m:02d}" for m in range(1, 6)]
    incremental = make_workspace(tmp_path / "incremental")
    copy_sample(incremental.landing, months=history)
    assert incremental.build().success

    # June arrives, and a revised March 2025 (the same file changed in place)
    copy_sample(incremental.landing, months=["202506"])
    march = incremental.landing / "exports" / "gacc_exports_202503.csv"
    text = march.read_bytes().decode("gb18030")
    line = next(l for l in text.split("\r\n") if '"502"' in l and '"85051110"' in l)
    march.write_bytes(text.replace(line, line.replace('"560,000"', '"561,000"')).encode("gb18030"))
    os.utime(march)
    result = incremental.build()
    assert result.success
    # the second build picked up exactly the two new loads (March revised, June)
    runs = incremental.query("SELECT dagster_run_id, count(*) FROM raw.customs_loads_built GROUP BY 1 ORDER BY 2")
    assert [n for _, n in runs] == [2, 17] and runs[0][0] == result.run_id

    clean = make_workspace(tmp_path / "clean")
    shutil.copytree(incremental.landing, clean.landing, dirs_exist_ok=True)
    assert clean.build().success

    # the clean build loads only the revised March file, the incremental one kept both releases
    assert incremental.scalar("SELECT count(*) FROM raw.customs_loads") == 19
    assert clean.scalar("SELECT count(*) FROM raw.customs_loads") == 18
    us_march = "SELECT quantity_kg FROM marts.fct_exports_monthly WHERE month = DATE '2025-03-01' AND hs8 = '85051110' AND partner_code = '502'"
    assert incremental.scalar(us_march) == clean.scalar(us_march) == 561_000
    # identical marts apart from lineage ids of the March load
    for table, order in (("export_growth_monthly", "month, hs8, partner_iso3"),):
        a = incremental.query(f"SELECT * FROM marts.{table} ORDER BY {order}")
        b = clean.query(f"SELECT * FROM marts.{table} ORDER BY {order}")
        assert a == b
    cols = "month, hs8, partner_code, partner_iso3, quantity_kg, quantity, unit_code, value_usd, value_cny, source_row_count"
    assert incremental.query(f"SELECT {cols} FROM marts.fct_exports_monthly ORDER BY ALL") == \
        clean.query(f"SELECT {cols} FROM marts.fct_exports_monthly ORDER BY ALL")


def test_dbt_rejects_a_malformed_month_var(tmp_path):
    env = dict(os.environ, WAREHOUSE_PATH=str(tmp_path / "warehouse.duckdb"))
    out = subprocess.run(
        [str(shutil.which("dbt") or os.path.join(os.path.dirname(os.sys.executable), "dbt")), "compile",
         "--select", "fct_exports_monthly", "--vars", '{"months": ["2025-06-01\'; drop table x; --"]}',
         "--profiles-dir", ".", "--project-dir", "."],
        cwd="dbt", env=env, capture_output=True, text=True, timeout=180,
    )
    assert out.returncode != 0
    assert "is not a month written YYYY-MM-01" in out.stdout + out.stderr
