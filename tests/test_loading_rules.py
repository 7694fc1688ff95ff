"""Loading rules through the real Dagster job: idempotence, header languages, gap months."""

from __future__ import annotations

import pytest

import shutil

from gacc_files import copy_sample, magnet_row, write_extract


def fct_rows(ws):
    return ws.query(
        "SELECT month, hs8, partner_code, quantity_kg, value_usd FROM marts.fct_exports_monthly ORDER BY ALL"
    )


@pytest.mark.slow
def test_loading_the_same_file_twice_adds_nothing(workspace):
    copy_sample(workspace.landing, months=["202505", "202506"])
    assert workspace.build().success
    before = fct_rows(workspace)
    raw_before = workspace.scalar("SELECT count(*) FROM raw.customs_rows")

    assert workspace.build().success  # same files again
    # the same content under another name is the same download
    src = workspace.landing / "exports" / "gacc_exports_202506.csv"
    shutil.copy(src, workspace.landing / "exports" / "copy of gacc_exports_202506.csv")
    assert workspace.build().success

    assert workspace.scalar("SELECT count(*) FROM raw.customs_rows") == raw_before
    assert workspace.scalar("SELECT count(*) FROM raw.customs_loads") == 2
    assert fct_rows(workspace) == before


@pytest.mark.slow
def test_both_header_languages_load_to_the_same_rows(tmp_path):
    from conftest import make_workspace

    rows = [
        magnet_row("202506", "502", 353_000, 17_650_000),
        magnet_row("202506", "304", 764_000, 38_200_000),
        magnet_row("202506", "133", 512_345, 25_617_250, hs8="85051190"),
    ]
    zh = make_workspace(tmp_path / "zh")
    write_extract(zh.landing / "exports" / "zh.csv", rows, lang="zh")
    en = make_workspace(tmp_path / "en")
    en_rows = [dict(r, unit="Kilogram") for r in rows]
    write_extract(
        en.landing / "exports" / "en.csv", en_rows, lang="en", supplementary="Supplimentary",
        order=("value", "partner_code", "quantity", "hs8", "unit", "period", "partner_name", "commodity_name", "quantity2", "unit2"),
    )
    assert zh.build().success and en.build().success
    assert fct_rows(zh) == fct_rows(en)
    assert len(fct_rows(zh)) == 3
    assert {r[0] for r in zh.query("SELECT header_language FROM raw.customs_loads")} == {"zh"}
    assert {r[0] for r in en.query("SELECT header_language FROM raw.customs_loads")} == {"en"}


@pytest.mark.slow
def test_a_gap_month_gives_null_growth_not_a_shifted_comparison(workspace):
    copy_sample(workspace.landing, months=["202503", "202505", "202506"])  # April missing
    assert workspace.build().success
    may = workspace.query(
        "SELECT mom_pct, quantity_kg FROM marts.export_growth_monthly "
        "WHERE hs8 = '85051110' AND partner_iso3 = 'WLD' AND month = DATE '2025-05-01'"
    )[0]
    assert may[0] is None and float(may[1]) == 1_238_000
    june = workspace.scalar(
        "SELECT mom_pct FROM marts.export_growth_monthly "
        "WHERE hs8 = '85051110' AND partner_iso3 = 'WLD' AND month = DATE '2025-06-01'"
    )
    assert round(june, 1) == 157.5
    # no year-to-date while January, February and April are missing
    assert workspace.scalar(
        "SELECT ytd_quantity_kg FROM marts.export_growth_monthly "
        "WHERE hs8 = '85051110' AND partner_iso3 = 'WLD' AND month = DATE '2025-06-01'"
    ) is None
