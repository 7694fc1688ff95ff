"""The country dimension is at the grain the ISO3-keyed tables join on, and a test guards every such join.

dim_partner has one row per GACC code and Spain is four codes: an ISO3 join to it counted Spain four
times (June 2025 EU magnets 1,375.2 t instead of 1,267.2 t). The generic test joins_one_row,
attached to the join keys of marts and views, fails when a dimension has more than one row for a
key they hold; here it is shown failing on a duplicate written into dim_country.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DBT = Path(sys.executable).with_name("dbt")

EU27 = {"AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC", "HUN", "IRL",
        "ITA", "LVA", "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK", "SVN", "ESP", "SWE"}


def test_dim_country_has_one_row_per_iso3_and_the_27_members(sample_build):
    rows, keys = sample_build.query("select count(*), count(distinct partner_iso3) from marts.dim_country")[0]
    assert rows == keys
    assert {r[0] for r in sample_build.query("select partner_iso3 from marts.dim_country where is_eu27")} == EU27
    # every ISO3 of dim_partner, grouping exactly its codes
    assert sample_build.query(
        """select p.partner_iso3 from marts.dim_partner p
           group by 1 having string_agg(p.partner_code, ',' order by p.partner_code)
               is distinct from (select c.gacc_partner_codes from marts.dim_country c where c.partner_iso3 = p.partner_iso3)"""
    ) == []
    assert sample_build.query(
        "select country_name_en, gacc_partner_codes, gacc_partner_count from marts.dim_country where partner_iso3 = 'ESP'"
    ) == [("Spain", "207,210,256,312", 4)]
    # dim_partner's is_eu, kept for compatibility, flags codes of members and their outermost regions
    assert sample_build.scalar("select count(*) from marts.dim_partner where is_eu") == 35


def test_eu27_june_2025_magnets_through_the_dimension(sample_build):
    eu27 = sample_build.scalar(
        """select round(sum(g.quantity_kg) / 1000, 1) from marts.export_growth_monthly g
           join marts.dim_country c using (partner_iso3)
           where c.is_eu27 and g.hs8 = '85051110' and g.month = date '2025-06-01'""")
    view = sample_build.scalar(
        "select round(quantity_t, 1) from marts.v_exports_eu_monthly where hs8 = '85051110' and month = date '2025-06-01'")
    assert float(eu27) == float(view) == 1267.2


def _dbt_test(warehouse: Path, target: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WAREHOUSE_PATH": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
    return subprocess.run(
        [str(DBT), "test", "--select", "test_name:joins_one_row", "--profiles-dir", ".", "--target-path", str(target)],
        cwd=ROOT / "dbt", env=env, capture_output=True, text=True, timeout=600,
    )


def test_joins_one_row_fails_on_a_duplicated_dimension_key(sample_build, tmp_path):
    import duckdb

    warehouse = tmp_path / "warehouse.duckdb"
    working = tmp_path / "warehouse.duckdb.build"  # the dbt profile's dev target
    shutil.copyfile(sample_build.warehouse, working)
    working.chmod(0o644)

    clean = _dbt_test(warehouse, tmp_path / "target")
    assert clean.returncode == 0, clean.stdout[-3000:]
    assert "PASS=" in clean.stdout and "ERROR=0" in clean.stdout

    con = duckdb.connect(str(working))
    con.execute("insert into marts.dim_country select * from marts.dim_country where partner_iso3 = 'USA'")
    con.execute("insert into marts.dim_commodity select * from marts.dim_commodity where hs8 = '85051110'")
    con.close()
    broken = _dbt_test(warehouse, tmp_path / "target")
    assert broken.returncode != 0
    failed = set(re.findall(r" FAIL \d+ (joins_one_row\S+)", broken.stdout))
    assert any("v_magnet_exports_by_partner_partner_iso3" in name for name in failed), broken.stdout[-3000:]
    assert any("v_export_growth_named_partner_iso3" in name for name in failed)
    assert any("v_export_growth_named_hs8" in name for name in failed)
    assert not any("fct_exports_monthly" in name for name in failed)  # dim_partner untouched
