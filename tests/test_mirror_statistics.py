"""Mirror statistics: UN Comtrade files loaded (or rejected) like GACC files, the HS8 -> HS6
roll-up, marts.mirror_trade_monthly against hand-computed figures, and the mirror checks."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import sys
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.ingest.comtrade_format import COLUMNS, FOLDER
from dagster_project.lib.ingest.landing import ingest_landing
from dagster_project.lib.quality.gx_suites import run_checks
from dagster_project.lib.quality.mirror_checks import MIRROR_CHECKS
from dagster_project.lib.warehouse.database import create_raw_tables
from gacc_files import SAMPLE_DIR, copy_sample

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "data"))
from generate_mirror_sample import row  # noqa: E402

CHINA = ("156", "CHN", "China")
WORLD = ("0", "W00", "World")


def comtrade_bytes(rows: list[dict], columns=COLUMNS, bom: bool = True) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig" if bom else "utf-8")


def write(landing: Path, name: str, content: bytes) -> Path:
    path = landing / FOLDER / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def imports(iso: str, ym: str, kg: float, cif: float, unit: int = 8) -> dict:
    return row(iso, ym, "M", CHINA, unit, kg if unit == 8 else kg * 10, kg, cif, cif)


def ingest(tmp_path: Path, landing: Path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    create_raw_tables(con)
    report = ingest_landing(con, landing, tmp_path / "staging", today=dt.date(2026, 3, 1))
    return con, report


# ---------------------------------------------------------------- loading and rejections
def test_a_comtrade_file_loads_whole_with_lineage_and_counts_what_it_ignores(tmp_path):
    landing = tmp_path / "landing"
    breakdown = {**imports("USA", "202506", 10, 20), "motCode": "1000", "motDesc": "Air"}
    annual = {**imports("USA", "202501", 10, 20), "freqCode": "A", "period": "2025", "refMonth": "52"}
    chapter = {**imports("USA", "202506", 10, 20), "cmdCode": "85"}
    rows = [imports("USA", "202506", 1000, 60000), imports("USA", "202507", 1200, 70000),
            row("USA", "202506", "M", WORLD, 8, 5000, 5000, 9, 9), row("USA", "202506", "X", CHINA, 8, 3, 3, None, 4),
            breakdown, annual, chapter]
    write(landing, "usa.csv", comtrade_bytes(rows))
    con, report = ingest(tmp_path, landing)
    assert [r.file_path for r in report.mirror_loaded] == [f"{FOLDER}/usa.csv"] and not report.rejected
    load = con.execute("""SELECT row_count, rows_kept, rows_ignored_not_monthly, rows_ignored_not_import,
                                 rows_ignored_not_china, rows_ignored_breakdown, rows_ignored_not_hs6,
                                 period_start, period_end, reporters FROM raw.comtrade_loads""").fetchall()
    assert load == [(7, 2, 1, 1, 1, 1, 1, dt.date(2025, 6, 1), dt.date(2025, 7, 1), "USA")]
    kept = con.execute("""SELECT row_number, month, reporter_iso3, partner_code, hs6, qty, cif_value_usd, source_file,
                                 length(file_sha256) FROM raw.comtrade_rows ORDER BY row_number""").fetchall()
    assert kept == [(1, dt.date(2025, 6, 1), "USA", "156", "850511", 1000, 60000, f"{FOLDER}/usa.csv", 64),
                    (2, dt.date(2025, 7, 1), "USA", "156", "850511", 1200, 70000, f"{FOLDER}/usa.csv", 64)]
    # a second ingest: nothing new
    again = ingest_landing(con, landing, tmp_path / "staging", today=dt.date(2026, 3, 1))
    assert again.mirror_loaded == [] and again.skipped == [f"{FOLDER}/usa.csv"]


def test_the_api_subset_of_columns_is_enough(tmp_path):
    landing = tmp_path / "landing"
    subset = ("freqCode", "period", "reporterCode", "reporterISO", "flowCode", "partnerCode", "cmdCode",
              "qtyUnitCode", "qty", "primaryValue")
    write(landing, "subset.csv", comtrade_bytes([imports("DEU", "202506", 500, 30000)], columns=subset, bom=False))
    con, report = ingest(tmp_path, landing)
    assert not report.rejected
    assert con.execute("SELECT reporter_iso3, qty, cif_value_usd, primary_value_usd FROM raw.comtrade_rows").fetchall() == [
        ("DEU", 500, None, 30000)]


def _truncated() -> bytes:
    content = comtrade_bytes([imports("USA", "202506", 1000, 60000), imports("USA", "202507", 1200, 70000)])
    return content[: len(content) - 30]  # cut inside the last row


REJECTIONS = {
    "wrong_flow": (comtrade_bytes([row("USA", "202506", "X", CHINA, 8, 5, 5, None, 9)]), "wrong flow: no import rows (flowCode X)"),
    "annual": (comtrade_bytes([{**imports("USA", "202501", 10, 20), "freqCode": "A", "period": "2025"}]), "annual file"),
    "unknown_unit": (comtrade_bytes([imports("USA", "202506", 1, 2), {**imports("USA", "202507", 1, 2), "qtyUnitCode": "99"}]),
                     "column 'qtyUnitCode': unknown quantity unit"),
    "truncated": (_truncated(), "truncated"),
    "missing_column": (comtrade_bytes([imports("USA", "202506", 1, 2)], columns=[c for c in COLUMNS if c != "qty"]),
                       "required column(s) 'qty' missing"),
    "bad_period": (comtrade_bytes([{**imports("USA", "202506", 1, 2), "period": "2025-06"}]), "column 'period'"),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_a_bad_comtrade_file_is_rejected_with_row_and_column(tmp_path, case):
    content, expected = REJECTIONS[case]
    landing = tmp_path / "landing"
    path = write(landing, f"{case}.csv", content)
    con, report = ingest(tmp_path, landing)
    assert report.mirror_loaded == [] and len(report.rejected) == 1
    reason = report.rejected[0].reason
    assert expected in reason, reason
    assert con.execute("SELECT count(*) FROM raw.comtrade_rows").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM audit.rejected_files WHERE file_path = $p",
                       {"p": f"{FOLDER}/{case}.csv"}).fetchone()[0] == 1
    assert path.read_bytes() == content  # the landing directory is never modified
    if case == "unknown_unit":
        assert "row 2 (line 3): '99'" in reason


# ---------------------------------------------------------------- the mirror, built
def _china_kg_usd(partner_code: str, ym: str) -> tuple[float, float]:
    """China's HS 850511 exports to a partner in a month, summed by hand from the sample's GACC file."""
    aliases = {"商品编码": "hs8", "Commodity code": "hs8", "贸易伙伴编码": "partner", "Trading partner code": "partner",
               "第一数量": "kg", "Quantity": "kg", "美元": "usd", "US dollar": "usd"}
    kg = usd = 0.0
    with (SAMPLE_DIR / f"gacc_exports_{ym}.csv").open(encoding="gb18030", newline="") as handle:
        for raw in csv.DictReader(handle):
            r = {aliases.get(k, k): v for k, v in raw.items()}
            if r["hs8"].startswith("850511") and r["partner"] == partner_code:
                kg += float(r["kg"].replace(",", ""))
                usd += float(r["usd"].replace(",", ""))
    return kg, usd


@pytest.mark.slow
def test_the_mirror_against_hand_computed_figures_and_its_checks(workspace):
    ws = workspace
    copy_sample(ws.landing, months=["202505", "202506", "202507"])
    usa_june, usa_july = _china_kg_usd("502", "202506"), _china_kg_usd("502", "202507")
    write(ws.landing, "usa_2025.csv", comtrade_bytes([
        imports("USA", "202506", 300_000, 15_000_000), imports("USA", "202507", 450_000, 21_000_000),
        row("USA", "202506", "M", WORLD, 8, 9e6, 9e6, 9e8, 9e8)]))
    write(ws.landing, "deu_2025.csv", comtrade_bytes([
        imports("DEU", "202506", 700_000, 30_000_000, unit=5), imports("DEU", "202507", 900_000, 40_000_000)]))
    result = ws.build()
    assert result.success
    mirror = {(m, p): rest for m, p, *rest in ws.query(
        """SELECT strftime(month, '%Y%m'), partner_iso3, china_reported_kg, china_reported_usd, partner_reported_kg,
                  partner_reported_usd, kg_gap_pct, cif_fob_ratio, partner_reported_kg_next_month, china_hs8_codes,
                  partner_source_file, partner_row_number
           FROM marts.mirror_trade_monthly WHERE hs6 = '850511'""")}
    june = mirror[("202506", "USA")]
    # HS8 -> HS6: both 8505.11 codes of China's side summed
    assert june[0] == pytest.approx(usa_june[0]) and june[1] == pytest.approx(usa_june[1], abs=0.01)
    assert june[7] == "85051110,85051190"
    assert june[2:4] == [300_000, 15_000_000]
    assert float(june[4]) == round(100 * (300_000 - usa_june[0]) / usa_june[0], 1)
    assert float(june[5]) == round(15_000_000 / usa_june[1], 3)
    assert june[6] == 450_000  # July's figure beside June's
    assert june[8:] == [f"{FOLDER}/usa_2025.csv", 1]
    assert mirror[("202507", "USA")][0] == pytest.approx(usa_july[0]) and mirror[("202507", "USA")][6] is None
    # Germany's June is in items: out of the comparison, with the reason; its July is compared
    assert ("202506", "DEU") not in mirror and mirror[("202507", "DEU")][2] == 900_000
    reasons = dict(ws.query("""SELECT partner_iso3 || strftime(month, '%Y%m'), excluded_reason
                               FROM intermediate.int_mirror_comparisons WHERE hs6 = '850511'"""))
    assert reasons["DEU202506"] == "partner quantity not in kg (qtyUnitCode 5, u)"
    # China's May has no partner month (the files start in June): not listed
    assert "USA202505" not in reasons
    # another HS6 China exports to the US, which the US file does not hold
    assert "no partner figure for this HS6, partner and month" in {r for (r,) in ws.query(
        "SELECT excluded_reason FROM intermediate.int_mirror_comparisons WHERE partner_iso3 = 'USA'")}
    checks = dict(ws.query("SELECT check_name, passed FROM audit.check_results WHERE check_name LIKE 'mirror_%'"))
    assert checks == {"mirror_within_partner_history": True, "mirror_no_double_count": True}

    # a revised file (Comtrade revises): a mirror-only change rebuilds the mirror, no GACC month
    write(ws.landing, "usa_2025.csv", comtrade_bytes([
        imports("USA", "202506", 320_000, 15_500_000), imports("USA", "202507", 450_000, 21_000_000)]))
    os.utime(ws.landing / FOLDER / "usa_2025.csv")
    revised = ws.build()
    assert revised.success and not revised.plan.ranges
    assert ws.scalar("""SELECT partner_reported_kg FROM marts.mirror_trade_monthly
                        WHERE partner_iso3 = 'USA' AND month = DATE '2025-06-01' AND hs6 = '850511'""") == 320_000

    # the same US figures under a second reporter code: one China figure, two partner figures
    write(ws.landing, "usa_again.csv", comtrade_bytes([{**imports("USA", "202506", 1, 1), "reporterCode": "841"}]))
    doubled = ws.build()
    assert not doubled.success
    failed = ws.query("SELECT check_name, severity FROM audit.check_results WHERE NOT passed AND dagster_run_id = $r",
                      {"r": doubled.run_id}, working=True)
    assert ("mirror_no_double_count", "ERROR") in failed
    # the served file keeps the last good mirror
    assert ws.scalar("SELECT count(*) FROM marts.mirror_trade_monthly WHERE partner_iso3 = 'USA' AND month = DATE '2025-06-01'") == 1


# ---------------------------------------------------------------- the checks on constructed cases
def _mirror_table(con, rows):
    con.execute("CREATE SCHEMA marts")
    con.execute("""CREATE TABLE marts.mirror_trade_monthly (month DATE, hs6 VARCHAR, partner_iso3 VARCHAR,
                   kg_gap_pct DECIMAL(10, 1), cif_fob_ratio DECIMAL(10, 3), partner_source_file VARCHAR,
                   partner_row_number BIGINT)""")
    con.executemany("INSERT INTO marts.mirror_trade_monthly VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def _steady(partner: str, months: int = 18) -> list[tuple]:
    out = []
    for i in range(months):
        month = dt.date(2024 + i // 12, i % 12 + 1, 1)
        out.append((month, "850511", partner, 5 + (i % 5) * 2, 1.06 + (i % 3) * 0.01, f"{partner}.csv", i + 1))
    return out


def test_the_history_check_warns_on_a_month_far_outside_the_partners_own_history():
    check = next(c for c in MIRROR_CHECKS if c.name == "mirror_within_partner_history")
    con = duckdb.connect()
    steady = _steady("JPN")
    odd = _steady("KOR")
    odd[15] = (*odd[15][:3], 8, 2.40, *odd[15][5:])  # CIF twice FOB: not freight
    odd[16] = (*odd[16][:3], 180, 1.07, *odd[16][5:])  # nearly three times the kg China reports
    _mirror_table(con, steady + odd)
    [outcome] = run_checks(con, checks=(check,))
    assert check.severity == "WARN" and not outcome.passed
    assert [(r["partner_iso3"], r["month"]) for r in outcome.failing_sample] == [("KOR", "2025-04"), ("KOR", "2025-05")]
    # an ordinary move (CIF/FOB 1.20, a 40-point gap) is not flagged, nor a series too short to judge
    con2 = duckdb.connect()
    calm = _steady("JPN")
    calm[15] = (*calm[15][:3], 45, 1.20, *calm[15][5:])
    _mirror_table(con2, calm + [(*r[:4], 3.0, *r[5:]) for r in _steady("VNM", months=6)])
    assert run_checks(con2, checks=(check,))[0].passed


def test_the_double_count_check_blocks_one_china_figure_matched_twice():
    check = next(c for c in MIRROR_CHECKS if c.name == "mirror_no_double_count")
    con = duckdb.connect()
    rows = _steady("USA", months=3)
    rows.append((*rows[1][:5], "usa_841.csv", 1))
    _mirror_table(con, rows)
    [outcome] = run_checks(con, checks=(check,))
    assert check.severity == "ERROR" and not outcome.passed
    assert outcome.failing_sample == [{"month": "2024-02", "hs6": "850511", "partner_iso3": "USA", "partner_figures": 2,
                                       "partner_rows": outcome.failing_sample[0]["partner_rows"]}]
    assert "usa_841.csv row 1" in outcome.failing_sample[0]["partner_rows"]


# ---------------------------------------------------------------- the chart and the sample
def test_the_mirror_chart_names_the_eu_members_it_sums(tmp_path):
    from dagster_project.lib.serving.mirror_chart import MIRROR_PNG, draw_mirror_chart, load_panels

    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute("""CREATE TABLE marts.mirror_trade_monthly AS SELECT * FROM (VALUES
        (DATE '2025-06-01', '850511', 'USA', 411109.0, 300000.0), (DATE '2025-06-01', '850511', 'DEU', 800000.0, 700000.0),
        (DATE '2025-06-01', '850511', 'FRA', 100000.0, 90000.0), (DATE '2025-06-01', '850519', 'DEU', 5.0, 5.0))
        t(month, hs6, partner_iso3, china_reported_kg, partner_reported_kg)""")
    con.execute("""CREATE TABLE marts.dim_country AS SELECT * FROM (VALUES ('USA', false), ('DEU', true), ('FRA', true))
        t(partner_iso3, is_eu27)""")
    usa, eu, japan = load_panels(con)
    assert usa.china_t == [411.109] and usa.partner_t == [300.0]
    assert eu.title == "European Union (2 of 27 members report: DEU, FRA)" and eu.china_t == [900.0] and eu.partner_t == [790.0]
    assert japan.months == []
    draw_mirror_chart([usa, eu, japan], tmp_path / MIRROR_PNG)
    first = (tmp_path / MIRROR_PNG).read_bytes()
    draw_mirror_chart([usa, eu, japan], tmp_path / MIRROR_PNG)
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / MIRROR_PNG).read_bytes() == first


def test_the_sample_us_figures_respect_the_published_lower_bound():
    """US-reported NdFeB imports from China (a part of HS 850511) were $45.4M in Q1 2025: the sample's
    US-reported HS 850511 value for the quarter is at least that (dbt/seeds/published_figures.csv)."""
    from dagster_project.lib.settings import SEEDS_DIR

    with (SEEDS_DIR / "published_figures.csv").open() as handle:
        [bound] = [r for r in csv.DictReader(handle) if r["reporter"] == "USA" and r["evidence"] == "quoted"
                   and r["period_start"] == "2025-01"]
    sample = SAMPLE_DIR.parent / FOLDER / "comtrade_M_USA_2025_850511.csv"
    with sample.open(encoding="utf-8-sig", newline="") as handle:
        q1 = sum(float(r["primaryValue"]) for r in csv.DictReader(handle)
                 if r["partnerCode"] == "156" and r["flowCode"] == "M" and r["period"] <= "202503")
    assert q1 >= float(bound["value_usd"])
