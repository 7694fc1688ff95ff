"""Every grouping the GACC platform offers, through the real Dagster job: one world total per
month, flow and code whatever shapes are loaded and in whatever order; breakdowns never add to
it; a new version of a file withdraws the keys it drops; imports marts like the export ones."""

from __future__ import annotations

import datetime as dt

import pytest

from gacc_files import magnet_row, write_extract

# Each scenario is a landing and a build of its own (most of a minute each): make test runs them,
# make test-fast leaves them out; the sample build's tests cover every shape in the edit loop.
pytestmark = pytest.mark.slow

MAG = "85051110"
BASE_MTIME = 1_750_000_000.0
# June 2025: partners withheld by GACC make the partner breakdown 100 t short of the world total
PARTNERS = {"502": 300_000, "304": 500_000}  # USA, Germany: 800 t
WORLD_KG, WORLD_USD = 900_000, 45_000_000
PROVINCES = {"33": 600_000, "36": 300_000}  # add up to the world total
REGIMES = {"10": 700_000, "15": 200_000}
NO_PARTNER = ("period", "hs8", "commodity_name", "quantity", "unit", "value")


def _write_shape(landing, shape: str, mtime: float) -> None:
    path = landing / "exports" / f"{shape}_202506.csv"
    if shape == "partner":
        rows = [magnet_row("202506", p, kg, kg * 50) for p, kg in PARTNERS.items()]
        write_extract(path, rows, mtime=mtime)
    elif shape == "world":
        write_extract(path, [magnet_row("202506", "", WORLD_KG, WORLD_USD)], order=NO_PARTNER, mtime=mtime)
    elif shape == "province":
        rows = [magnet_row("202506", "", kg, kg * 50, province_code=c, province_name="") for c, kg in PROVINCES.items()]
        write_extract(path, rows, order=("period", "hs8", "province_code", "province_name", "quantity", "unit", "value"),
                      mtime=mtime)
    else:
        rows = [magnet_row("202506", "", kg, kg * 50, regime_code=c, regime_name="") for c, kg in REGIMES.items()]
        write_extract(path, rows, lang="en", order=("hs8", "period", "regime_code", "regime_name", "value", "quantity", "unit"),
                      mtime=mtime)


def _latest_checks(ws) -> dict[str, tuple[str, bool]]:
    return {name: (severity, passed) for name, severity, passed in ws.query(
        """SELECT check_name, arg_max(severity, checked_at), arg_max(passed, checked_at)
           FROM audit.check_results GROUP BY check_name""")}


ORDERS = [("world", "partner", "province", "regime"), ("regime", "province", "partner", "world")]


@pytest.mark.parametrize("order", ORDERS, ids=["world_first", "world_last"])
def test_one_world_total_whatever_shapes_and_order(tmp_path, order):
    """The world-total download is the WLD figure, partner shares are of it, the provinces and
    regimes are views of it; the partners' shortfall is a warning, and the build publishes."""
    from conftest import make_workspace

    ws = make_workspace(tmp_path)
    for i, shape in enumerate(order):
        _write_shape(ws.landing, shape, BASE_MTIME + i)
    assert ws.build().success
    wld = ws.query("""SELECT quantity_kg, value_usd, world_source FROM marts.export_growth_monthly
                      WHERE partner_iso3 = 'WLD' AND hs8 = $h AND month = DATE '2025-06-01'""", {"h": MAG})
    assert [(float(kg), float(usd), src) for kg, usd, src in wld] == [(WORLD_KG, WORLD_USD, "world_total")]
    shares = dict(ws.query("""SELECT partner_iso3, share_of_world_pct FROM marts.export_growth_monthly
                              WHERE partner_iso3 <> 'WLD' AND month = DATE '2025-06-01'"""))
    assert shares == pytest.approx({"USA": 100 * 300 / 900, "DEU": 100 * 500 / 900})
    # the partner rows stay as loaded: both figures are kept
    assert float(ws.scalar("SELECT sum(quantity_kg) FROM marts.fct_exports_monthly")) == sum(PARTNERS.values())
    provinces = ws.query("""SELECT province_code, province_name_en, quantity_kg, share_of_world_pct, world_source
                            FROM marts.export_growth_by_province ORDER BY province_code""")
    assert [(c, n, float(kg), round(s, 6), w) for c, n, kg, s, w in provinces] == [
        ("33", "Zhejiang", 600_000, round(100 * 600 / 900, 6), "world_total"),
        ("36", "Jiangxi", 300_000, round(100 * 300 / 900, 6), "world_total"),
    ]
    regimes = ws.query("SELECT regime_code, regime_name_zh, quantity_kg FROM marts.export_growth_by_regime ORDER BY 1")
    assert [(c, n, float(kg)) for c, n, kg in regimes] == [("10", "一般贸易", 700_000), ("15", "进料加工贸易", 200_000)]
    checks = _latest_checks(ws)
    assert checks["partners_add_up_to_world_total"] == ("WARN", False)
    assert checks["partners_sum_to_world"] == ("ERROR", True)
    assert checks["rows_and_totals_reconcile_raw_staging_fact"] == ("ERROR", True)


def test_without_a_world_total_the_partners_are_the_world(tmp_path):
    """Province and regime breakdowns never add to the world: with no world-total download, WLD is
    the partners' sum, and the breakdown shares are of that figure."""
    from conftest import make_workspace

    ws = make_workspace(tmp_path)
    for i, shape in enumerate(("province", "partner", "regime")):
        _write_shape(ws.landing, shape, BASE_MTIME + i)
    assert ws.build().success
    kg, source = ws.query("""SELECT quantity_kg, world_source FROM marts.export_growth_monthly
                             WHERE partner_iso3 = 'WLD' AND month = DATE '2025-06-01'""")[0]
    assert (float(kg), source) == (sum(PARTNERS.values()), "sum_of_partners")
    share = ws.scalar("SELECT share_of_world_pct FROM marts.export_growth_by_province WHERE province_code = '33'")
    assert share == pytest.approx(100 * 600 / 800)
    assert _latest_checks(ws)["partners_sum_to_world"] == ("ERROR", True)


AS_OF = """SELECT partner_code, quantity FROM intermediate.int_customs_facts_history
           WHERE valid_from <= CAST($d AS TIMESTAMP) AND (valid_to IS NULL OR valid_to > CAST($d AS TIMESTAMP))
           ORDER BY partner_code"""


def test_a_revision_withdraws_the_keys_it_drops(workspace):
    """A new version of a file (same path) replaces the old one's whole content: Japan's row and
    the whole of May, present before and absent now, leave the current figures; the history keeps
    them with an end date, and the as-of query gives them before the revision and not after."""
    path = workspace.landing / "exports" / "magnets.csv"
    v1 = [magnet_row("202505", "116", 100_000, 5_000_000),
          magnet_row("202506", "116", 200_000, 10_000_000), magnet_row("202506", "502", 300_000, 15_000_000)]
    write_extract(path, v1, mtime=BASE_MTIME)
    assert workspace.build().success
    between = workspace.scalar("SELECT max(loaded_at) FROM raw.customs_loads") + dt.timedelta(microseconds=1)

    v2 = [magnet_row("202506", "502", 320_000, 16_000_000)]  # Japan and May withdrawn, the US revised
    write_extract(path, v2, mtime=BASE_MTIME + 100)
    assert workspace.build().success
    revision = workspace.query("SELECT load_id, loaded_at FROM raw.customs_loads ORDER BY load_seq DESC LIMIT 1")[0]

    assert workspace.query("SELECT month, partner_code, quantity_kg FROM marts.fct_exports_monthly") == [
        (dt.date(2025, 6, 1), "502", 320_000)]
    assert workspace.scalar("SELECT count(*) FROM marts.export_growth_monthly WHERE month = DATE '2025-05-01'") == 0
    ended = workspace.query("""SELECT period_start, partner_code, valid_to, superseded_by_load_id, is_current
                               FROM intermediate.int_customs_facts_history WHERE NOT is_current ORDER BY 1, 2""")
    assert ended == [(dt.date(2025, 5, 1), "116", revision[1], revision[0], False),
                     (dt.date(2025, 6, 1), "116", revision[1], revision[0], False),
                     (dt.date(2025, 6, 1), "502", revision[1], revision[0], False)]
    before = workspace.query(AS_OF, {"d": between})
    after = workspace.query(AS_OF, {"d": revision[1]})
    assert [(p, float(q)) for p, q in before] == [("116", 100_000), ("116", 200_000), ("502", 300_000)]
    assert [(p, float(q)) for p, q in after] == [("502", 320_000)]


def test_a_later_file_still_supersedes_by_key_only(workspace):
    """Another file with some of the keys revises those keys and leaves the others current: only a
    new version of the same file withdraws."""
    write_extract(workspace.landing / "exports" / "a.csv",
                  [magnet_row("202506", "116", 200_000, 10_000_000), magnet_row("202506", "502", 300_000, 15_000_000)],
                  mtime=BASE_MTIME)
    write_extract(workspace.landing / "exports" / "b.csv", [magnet_row("202506", "502", 310_000, 15_500_000)],
                  mtime=BASE_MTIME + 1)
    assert workspace.build().success
    assert workspace.query("SELECT partner_code, quantity_kg FROM marts.fct_exports_monthly ORDER BY 1") == [
        ("116", 200_000), ("502", 310_000)]


def test_imports_marts_against_hand_computed_figures(workspace):
    """fct_imports_monthly and import_growth_monthly: the export marts' definitions over imports/."""
    rows = {  # (month, partner) -> (kg, usd) of 28469019, rare-earth oxides
        ("202405", "106"): (5_000_000, 125_000_000), ("202405", "122"): (1_000_000, 26_000_000),
        ("202504", "106"): (4_000_000, 100_000_000), ("202504", "122"): (2_000_000, 52_000_000),
        ("202505", "106"): (6_000_000, 162_000_000), ("202505", "122"): (1_500_000, 39_000_000),
    }
    for month in ("202405", "202504", "202505"):
        write_extract(workspace.landing / "imports" / f"oxides_{month}.csv",
                      [magnet_row(m, p, kg, usd, hs8="28469019") for (m, p), (kg, usd) in rows.items() if m == month])
    # an export of the same code and partner, for the trade balance
    write_extract(workspace.landing / "exports" / "oxides_202505.csv", [magnet_row("202505", "122", 250_000, 7_000_000, hs8="28469019")])
    assert workspace.build().success
    fct = workspace.query("""SELECT month, partner_code, partner_iso3, quantity_kg, value_usd, source_row_count
                             FROM marts.fct_imports_monthly ORDER BY 1, 2""")
    assert [(m.strftime("%Y%m"), p, iso, int(kg), int(usd), n) for m, p, iso, kg, usd, n in fct] == [
        (m, p, {"106": "MMR", "122": "MYS"}[p], kg, usd, 1) for (m, p), (kg, usd) in sorted(rows.items())]
    growth = {(p, m.strftime("%Y%m")): (float(kg), mom, yoy, share, src) for m, p, kg, mom, yoy, share, src in workspace.query(
        """SELECT month, partner_iso3, quantity_kg, mom_pct, yoy_pct, share_of_world_pct, world_source
           FROM marts.import_growth_monthly""")}
    assert growth[("WLD", "202505")] == pytest.approx((7_500_000, 100 * (7.5 / 6 - 1), 100 * (7.5 / 6 - 1), 100.0, "sum_of_partners"))
    assert growth[("MMR", "202505")][:4] == pytest.approx((6_000_000, 50.0, 20.0, 80.0))
    assert growth[("MYS", "202505")][:4] == pytest.approx((1_500_000, -25.0, 50.0, 20.0))
    assert workspace.scalar("SELECT count(*) FROM marts.fct_exports_monthly WHERE hs8 = '28469019'") == 1
    balance = workspace.query("""SELECT partner_iso3, export_quantity_kg, import_quantity_kg, balance_quantity_kg, balance_value_usd
                                 FROM marts.v_trade_balance_monthly WHERE month = DATE '2025-05-01' ORDER BY 1""")
    assert [(p, float(e), float(i), float(b), float(v)) for p, e, i, b, v in balance] == [
        ("MMR", 0, 6_000_000, -6_000_000, -162_000_000), ("MYS", 250_000, 1_500_000, -1_250_000, -32_000_000)]
    # months with imports and no exports loaded: the balance is unknown, not the imports negated
    assert workspace.scalar("""SELECT count(*) FROM marts.v_trade_balance_monthly
                               WHERE month = DATE '2025-04-01' AND balance_quantity_kg IS NOT NULL""") == 0

