"""The fast decimal paths give exactly the plain casts' results, rounding and large values included.

dbt/macros/rescale_decimal.sql (fct marts) and quality._round4 (the reconciliation check) go
through 64-bit DECIMAL(18, .) when a value fits, because DuckDB rescales 128-bit decimals about
ten times slower; the results must not change by a unit in the last place.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import jinja2
import pytest

from dagster_project.lib.quality.reconciliation_checks import _round4

MACRO = Path(__file__).resolve().parents[1] / "dbt" / "macros" / "rescale_decimal.sql"
VALUES = ["0", "0.0005", "0.0015", "-0.0015", "1.2345", "-1.2345", "2.0050", "-0.0050", "12345.6789",
          "99999999999999.9999", "-99999999999999.9999", "99999999999999", "100000000000000.0005",
          "-123456789012345678.9995", "1234567890123456789012345678.5555", None]


def _values() -> duckdb.DuckDBPyConnection:
    """An in-memory table t(x DECIMAL(38, 4)) of VALUES."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t (x DECIMAL(38, 4))")
    con.executemany("INSERT INTO t VALUES (?)", [(v,) for v in VALUES])
    return con


def _rescale_sql(column: str, scale: int) -> str:
    env = jinja2.Environment()
    module = env.from_string(MACRO.read_text()).module
    return str(module.rescale_decimal(column, scale))


@pytest.mark.parametrize("scale", [0, 2, 3, 4])
def test_rescale_decimal_macro_equals_the_plain_cast(scale):
    con = _values()
    rows = con.execute(f"SELECT x, CAST(x AS DECIMAL(38, {scale})), {_rescale_sql('x', scale)} FROM t").fetchall()
    assert [r[1] for r in rows] == [r[2] for r in rows]
    assert con.execute(f"SELECT typeof({_rescale_sql('x', scale)}) FROM t LIMIT 1").fetchone()[0] == f"DECIMAL(38,{scale})"


@pytest.mark.parametrize("scale", [2, 3])
def test_round4_equals_round(scale):
    con = _values()
    rows = con.execute(f"SELECT round(x, {scale}), {_round4('x', scale)} FROM t").fetchall()
    assert [r[0] for r in rows] == [r[1] for r in rows]
