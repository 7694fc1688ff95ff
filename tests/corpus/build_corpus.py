"""A corpus of odd and bad GACC downloads, each with the outcome the ingest gate must give.

    .venv/bin/python tests/corpus/build_corpus.py DIR [--today 2026-01-15]   # write it into a landing dir

Every file is generated here, byte for byte the same on every run (only the two
"period not over yet" cases depend on `today`). `CASES(today)` lists the cases; each writes
its files and says, per file, what must happen: rows loaded (with the load's recorded
encoding, language, currency, dimensions, period, conversions, warnings, and any extra SQL
assertions), skipped as already loaded, or rejected with a reason that contains given
text and names the line and column at fault.

Loaded cases use distinct keys (months 2023-12 .. 2025-12 of 85051110, rare-earth magnets,
at ~50 USD/kg), so the whole corpus can share one landing directory and warehouse without
one case revising another, except where revision is the point.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:  # run as a script
    sys.path.insert(0, str(TESTS_DIR))

from gacc_files import DEFAULT_ORDER, render_extract, write_bytes, write_extract  # noqa: E402

from dagster_project.lib.settings import SEEDS_DIR  # noqa: E402

BASE_MTIME = 1_735_689_600.0  # 2025-01-01 UTC; a case's files get increasing mtimes (load order)
MAG = "85051110"
PARTNERS_ZH = {"116": "日本", "133": "韩国", "304": "德国", "502": "美国", "110": "中国香港"}
PARTNERS_EN = {"116": "Japan", "133": "Korea, Rep.", "304": "Germany", "502": "United States", "110": "Hong Kong, China"}
PRICE = {"116": 52, "133": 48, "304": 55, "502": 50, "110": 45}  # USD per kg
CNY_PER_USD = 7.18
DEFAULT_KG = {"116": 12_000, "304": 8_500, "502": 6_250}

ZH_ORDER = DEFAULT_ORDER
EN_ORDER = ("hs8", "commodity_name", "period", "partner_code", "partner_name", "value", "quantity", "unit", "quantity2", "unit2")

# the revised-in-place case: exports/202511_magnets.csv, first as V1, then changed in place to V2
REVISED_IN_PLACE = "exports/202511_magnets.csv"
REVISION_V1 = {"116": 10_000, "304": 4_000, "502": 2_000}
REVISION_V2 = {"116": 11_500, "304": 4_000, "502": 2_600}
# the revised-by-a-later-file case
REVISED_V1_FILE, REVISED_V2_FILE = "exports/202508_magnets.csv", "exports/202508_magnets_revised.csv"
REVISED_V1 = {"116": 9_000, "133": 3_000, "502": 1_500}
REVISED_V2 = {"116": 9_400, "133": 3_000, "502": 1_800}


def usd(partner: str, kg: int) -> int:
    return kg * PRICE[partner]


def mag_rows(period: str, kg: dict[str, int], *, lang: str = "zh", unit: str | None = None, hs8: str = MAG,
             currency: str = "USD", **extra) -> list[dict]:
    """Rows of 85051110 exports, one per partner, at each partner's price."""
    rows = []
    for partner, q in kg.items():
        value = usd(partner, q) if currency == "USD" else round(usd(partner, q) * CNY_PER_USD)
        rows.append({
            "period": period, "hs8": hs8, "commodity_name": "稀土永磁铁" if lang == "zh" else "Rare-earth permanent magnets",
            "partner_code": partner, "partner_name": (PARTNERS_ZH if lang == "zh" else PARTNERS_EN)[partner],
            "quantity": q, "unit": unit or ("千克" if lang == "zh" else "Kilogram"), "quantity2": 0, "unit2": "?",
            "value": value, **extra,
        })
    return rows


def plain(rows: list[dict]) -> list[dict]:
    """Numbers without thousands separators (for unquoted files, where '1,000' would be two fields)."""
    return [{k: str(v) if isinstance(v, int) else v for k, v in r.items()} for r in rows]


def without(order, *columns) -> tuple[str, ...]:
    return tuple(c for c in order if c not in columns)


def _kg_codes(n: int) -> list[str]:
    with (SEEDS_DIR / "gacc_commodities.csv").open(encoding="utf-8") as handle:
        return [r["hs8"] for r in csv.DictReader(handle) if r["unit1_code"] == "09" and not r["hs8"].startswith("8505")][:n]


def _partner_codes(n: int) -> list[str]:
    with (SEEDS_DIR / "gacc_partners.csv").open(encoding="utf-8") as handle:
        return [r["partner_code"] for r in csv.DictReader(handle)][:n]


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Expect:
    rel: str  # path in the landing directory
    rows: int | None = None  # rows loaded from it
    reject: tuple[str, ...] = ()  # text the rejection reason contains
    line: int | None = None  # the reason names this line ("line N")
    row: int | None = None  # ... and this data row ("row N")
    column: str | None = None  # ... and this column (its header text)
    skipped: bool = False  # already loaded: the same content under another name
    load: dict = field(default_factory=dict)  # expected raw.customs_loads columns
    warnings: tuple[str, ...] = ()  # text in raw.customs_loads.warnings (none expected when empty)
    checks: tuple[tuple[str, list], ...] = ()  # (SQL with $rel, expected rows) on the warehouse

    @property
    def outcome(self) -> str:
        return "rejected" if self.reject else "skipped" if self.skipped else "loaded"


@dataclass(frozen=True)
class Case:
    name: str
    about: str
    write: Callable[[Path, float], None]  # (landing dir, mtime of its first file)
    expects: tuple[Expect, ...]


def _rows_sql(columns: str) -> str:
    return f"SELECT {columns} FROM raw.customs_rows WHERE source_file = $rel ORDER BY row_number"


def CASES(today: dt.date) -> list[Case]:  # noqa: N802 - a table, read like a constant
    next_month = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    this_month = today.replace(day=1)
    cases: list[Case] = []

    def case(name: str, about: str, *expects: Expect):
        def register(write: Callable[[Path, float], None]):
            cases.append(Case(name, about, write, expects))
            return write
        return register

    # ------------------------------------------------------------------ encodings
    @case("gb18030_zh", "GB18030, Chinese headers: the platform's own download",
          Expect("exports/enc_gb18030.csv", rows=3,
                 load={"encoding": "gb18030", "header_language": "zh", "currency": "USD", "dimensions": "hs8,partner",
                       "period_source": "column", "period_start": dt.date(2024, 1, 1), "period_end": dt.date(2024, 1, 1)},
                 checks=((_rows_sql("partner_code, partner_name, quantity, value"),
                          [("116", "日本", 12000, 624000), ("304", "德国", 8500, 467500), ("502", "美国", 6250, 312500)]),)))
    def _(landing, t):
        write_extract(landing / "exports/enc_gb18030.csv", mag_rows("202401", DEFAULT_KG), encoding="gb18030", mtime=t)

    @case("gbk_zh", "GBK (a subset of GB18030), Chinese headers",
          Expect("exports/enc_gbk.csv", rows=3, load={"encoding": "gb18030", "header_language": "zh"},
                 checks=((_rows_sql("partner_name"), [("日本",), ("德国",), ("美国",)]),)))
    def _(landing, t):
        write_extract(landing / "exports/enc_gbk.csv", mag_rows("202402", DEFAULT_KG), encoding="gbk", mtime=t)

    @case("utf8_zh", "UTF-8 without BOM, Chinese headers",
          Expect("exports/enc_utf8.csv", rows=3, load={"encoding": "utf-8", "header_language": "zh"},
                 checks=((_rows_sql("commodity_name"), [("稀土永磁铁",)] * 3),)))
    def _(landing, t):
        write_extract(landing / "exports/enc_utf8.csv", mag_rows("202403", DEFAULT_KG), encoding="utf-8", mtime=t)

    @case("utf8_bom_zh", "UTF-8 with BOM (a spreadsheet's 'CSV UTF-8'), Chinese headers",
          Expect("exports/enc_utf8_bom.csv", rows=3, load={"encoding": "utf-8-sig", "header_language": "zh"},
                 checks=((_rows_sql("period_start"), [(dt.date(2024, 4, 1),)] * 3),)))
    def _(landing, t):
        write_extract(landing / "exports/enc_utf8_bom.csv", mag_rows("202404", DEFAULT_KG), encoding="utf-8-sig", mtime=t)

    # ------------------------------------------------------------------ header languages and spellings
    @case("en_supplementary", "English headers, 'Supplementary Quantity/Unit'",
          Expect("exports/en_supplementary.csv", rows=3, load={"header_language": "en", "encoding": "utf-8"},
                 checks=((_rows_sql("unit, unit_code, quantity2, unit2"),
                          [("Kilogram", "09", 0, None)] * 3),)))
    def _(landing, t):
        write_extract(landing / "exports/en_supplementary.csv", mag_rows("202405", DEFAULT_KG, lang="en"),
                      lang="en", order=EN_ORDER, encoding="utf-8", mtime=t)

    @case("en_supplimentary", "English headers, the platform's misspelling 'Supplimentary Quantity/Unit'",
          Expect("exports/en_supplimentary.csv", rows=3, load={"header_language": "en"},
                 checks=((_rows_sql("quantity2, unit2"), [(5, "Number of item")] * 3),)))
    def _(landing, t):
        rows = mag_rows("202406", DEFAULT_KG, lang="en", quantity2=5, unit2="Number of item")
        write_extract(landing / "exports/en_supplimentary.csv", rows, lang="en", order=EN_ORDER,
                      supplementary="Supplimentary", supplementary_unit="Supplimentary", mtime=t)

    @case("shuffled_unquoted", "Chinese headers in a shuffled order, unquoted, no trailing comma, LF line ends",
          Expect("exports/shuffled.csv", rows=3,
                 checks=((_rows_sql("hs8, partner_code, quantity, value, period_start"),
                          [(MAG, "116", 12000, 624000, dt.date(2024, 7, 1)),
                           (MAG, "304", 8500, 467500, dt.date(2024, 7, 1)),
                           (MAG, "502", 6250, 312500, dt.date(2024, 7, 1))]),)))
    def _(landing, t):
        order = ("value", "unit2", "partner_code", "quantity", "period", "commodity_name", "unit", "hs8", "quantity2", "partner_name")
        write_extract(landing / "exports/shuffled.csv", plain(mag_rows("202407", DEFAULT_KG)), order=order,
                      quote_all=False, trailing_comma=False, line_end="\n", mtime=t)

    # ------------------------------------------------------------------ optional dimensions
    @case("regime_zh", "with customs regime (贸易方式编码/名称): 3 rows, 2 partners",
          Expect("exports/by_regime_202408.csv", rows=3, load={"dimensions": "hs8,partner,regime"},
                 checks=((_rows_sql("partner_code, regime_code, regime_name, province_code"),
                          [("116", "10", "一般贸易", None), ("116", "14", "来料加工贸易", None),
                           ("304", "10", "一般贸易", None)]),)))
    def _(landing, t):
        rows = (mag_rows("202408", {"116": 7_000}, regime_code="10", regime_name="一般贸易")
                + mag_rows("202408", {"116": 3_000}, regime_code="14", regime_name="来料加工贸易")
                + mag_rows("202408", {"304": 5_000}, regime_code="10", regime_name="一般贸易"))
        order = ("period", "hs8", "commodity_name", "partner_code", "partner_name", "regime_code", "regime_name",
                 "quantity", "unit", "quantity2", "unit2", "value")
        write_extract(landing / "exports/by_regime_202408.csv", rows, order=order, mtime=t)

    @case("province_en", "with registration place, English headers (Locations of importers and exporters)",
          Expect("exports/by_province_202409.csv", rows=3, load={"dimensions": "hs8,partner,province", "header_language": "en"},
                 checks=((_rows_sql("partner_code, province_code, province_name, regime_code"),
                          [("116", "33", "Zhejiang", None), ("116", "36", "Jiangxi", None), ("502", "33", "Zhejiang", None)]),)))
    def _(landing, t):
        rows = (mag_rows("202409", {"116": 6_000}, lang="en", province_code="33", province_name="Zhejiang")
                + mag_rows("202409", {"116": 2_500}, lang="en", province_code="36", province_name="Jiangxi")
                + mag_rows("202409", {"502": 4_000}, lang="en", province_code="33", province_name="Zhejiang"))
        order = ("province_code", "province_name") + EN_ORDER
        write_extract(landing / "exports/by_province_202409.csv", rows, lang="en", order=order, mtime=t)

    @case("regime_and_province", "with both customs regime and registration place",
          Expect("exports/by_regime_province_202410.csv", rows=4, load={"dimensions": "hs8,partner,regime,province"}))
    def _(landing, t):
        rows = (mag_rows("202410", {"116": 5_000}, regime_code="10", regime_name="一般贸易", province_code="33", province_name="浙江省")
                + mag_rows("202410", {"116": 1_000}, regime_code="10", regime_name="一般贸易", province_code="36", province_name="江西省")
                + mag_rows("202410", {"116": 2_000}, regime_code="14", regime_name="来料加工贸易", province_code="33", province_name="浙江省")
                + mag_rows("202410", {"502": 3_000}, regime_code="10", regime_name="一般贸易", province_code="33", province_name="浙江省"))
        order = ("period", "regime_code", "regime_name", "hs8", "commodity_name", "province_code", "province_name",
                 "partner_code", "partner_name", "quantity", "unit", "quantity2", "unit2", "value")
        write_extract(landing / "exports/by_regime_province_202410.csv", rows, order=order, mtime=t)

    # -- the groupings without a partner column (the platform groups by at most two of commodity,
    #    partner, customs regime and registration place)
    @case("world_total_zh", "grouped by commodity only: the world total per code, no partner column",
          Expect("exports/world_202403.csv", rows=2, load={"dimensions": "hs8", "header_language": "zh"},
                 checks=((_rows_sql("hs8, partner_code, regime_code, province_code, quantity"),
                          [(MAG, None, None, None, 26_750), ("85051190", None, None, None, 4_000)]),)))
    def _(landing, t):
        rows = [{**r, "partner_code": "", "partner_name": ""} for r in
                mag_rows("202403", {"116": 26_750}) + mag_rows("202403", {"304": 4_000}, hs8="85051190")]
        write_extract(landing / "exports/world_202403.csv", rows,
                      order=without(ZH_ORDER, "partner_code", "partner_name"), mtime=t)

    @case("world_total_en", "grouped by commodity only, English headers and a name-borne period",
          Expect("exports/world_magnets_202402.csv", rows=1, load={"dimensions": "hs8", "header_language": "en",
                                                                     "period_source": "file name"}))
    def _(landing, t):
        write_extract(landing / "exports/world_magnets_202402.csv", mag_rows("202402", {"116": 19_000}, lang="en"),
                      lang="en", order=without(EN_ORDER, "period", "partner_code", "partner_name"), mtime=t)

    @case("province_only_zh", "commodity x registration place (注册地), no partner: which provinces export",
          Expect("exports/by_province_only_202401.csv", rows=2, load={"dimensions": "hs8,province"},
                 checks=((_rows_sql("partner_code, province_code, province_name, quantity"),
                          [(None, "33", "浙江省", 9_000), (None, "36", "江西省", 2_000)]),)))
    def _(landing, t):
        rows = (mag_rows("202401", {"116": 9_000}, province_code="33", province_name="浙江省")
                + mag_rows("202401", {"116": 2_000}, province_code="36", province_name="江西省"))
        order = ("period", "hs8", "commodity_name", "province_code", "province_name", "quantity", "unit", "quantity2", "unit2", "value")
        write_extract(landing / "exports/by_province_only_202401.csv", rows, order=order, mtime=t)

    @case("regime_only_en", "commodity x customs regime, English headers, no partner",
          Expect("exports/by_regime_only_202312.csv", rows=2, load={"dimensions": "hs8,regime", "header_language": "en"},
                 checks=((_rows_sql("partner_code, regime_code, quantity"), [(None, "10", 8_000), (None, "14", 1_500)]),)))
    def _(landing, t):
        rows = (mag_rows("202312", {"116": 8_000}, lang="en", regime_code="10", regime_name="General trade")
                + mag_rows("202312", {"116": 1_500}, lang="en", regime_code="14", regime_name="Processing with imported materials"))
        order = ("period", "hs8", "commodity_name", "regime_code", "regime_name", "quantity", "unit", "value")
        write_extract(landing / "exports/by_regime_only_202312.csv", rows, lang="en", order=order, mtime=t)

    @case("province_only_en", "commodity x registration place with English headers",
          Expect("exports/by_province_only_202402.csv", rows=1, load={"dimensions": "hs8,province", "header_language": "en"}))
    def _(landing, t):
        rows = mag_rows("202402", {"116": 7_000}, lang="en", province_code="33", province_name="Zhejiang")
        order = ("hs8", "commodity_name", "period", "province_code", "province_name", "value", "quantity", "unit")
        write_extract(landing / "exports/by_province_only_202402.csv", rows, lang="en", order=order, mtime=t)

    @case("no_commodity_column", "partner x regime totals of all goods: no commodity code column",
          Expect("exports/partner_by_regime_202506.csv",
                 reject=("no commodity code column", "贸易伙伴编码 x 贸易方式编码", "商品编码 / Commodity code as a grouping field"),
                 line=1))
    def _(landing, t):
        rows = mag_rows("202506", DEFAULT_KG, regime_code="10", regime_name="一般贸易")
        order = ("period", "partner_code", "partner_name", "regime_code", "regime_name", "quantity", "unit", "value")
        write_extract(landing / "exports/partner_by_regime_202506.csv", rows, order=order, mtime=t)

    @case("remark_and_empty_column", "a 备注 (remarks) column with text and a trailing empty column are ignored",
          Expect("exports/with_remarks.csv", rows=2,
                 checks=((_rows_sql("partner_code, quantity"), [("116", 4000), ("133", 3500)]),)))
    def _(landing, t):
        rows = mag_rows("202411", {"116": 4_000, "133": 3_500}, remark="初步数据")
        write_extract(landing / "exports/with_remarks.csv", rows, order=DEFAULT_ORDER + ("remark",), mtime=t)

    # ------------------------------------------------------------------ periods
    @case("named_single_month", "no 数据年月 column: the month comes from the file name YYYYMM",
          Expect("exports/202412_magnets.csv", rows=3,
                 load={"period_source": "file name", "period_start": dt.date(2024, 12, 1), "period_end": dt.date(2024, 12, 1)},
                 checks=((_rows_sql("DISTINCT is_cumulative"), [(False,)]),)))
    def _(landing, t):
        write_extract(landing / "exports/202412_magnets.csv", mag_rows("", DEFAULT_KG), order=without(ZH_ORDER, "period"), mtime=t)

    @case("named_range_cumulative", "no 数据年月 column, file named YYYYMM-YYYYMM: a cumulative (year-to-date) figure",
          Expect("exports/202501-202503_magnets_ytd.csv", rows=3,
                 load={"period_source": "file name", "period_start": dt.date(2025, 1, 1), "period_end": dt.date(2025, 3, 1)},
                 checks=((_rows_sql("DISTINCT is_cumulative, period_start, period_end"),
                          [(True, dt.date(2025, 1, 1), dt.date(2025, 3, 1))]),)))
    def _(landing, t):
        write_extract(landing / "exports/202501-202503_magnets_ytd.csv",
                      mag_rows("", {"116": 30_000, "304": 21_000, "502": 15_000}), order=without(ZH_ORDER, "period"), mtime=t)

    @case("jan_feb_combined", "January and February published together: 数据年月 '202501-202502' is a two-month cumulative",
          Expect("exports/gacc_exports_jan-feb.csv", rows=2,
                 load={"period_source": "column", "period_start": dt.date(2025, 1, 1), "period_end": dt.date(2025, 2, 1)},
                 checks=((_rows_sql("is_cumulative, period_start, period_end"),
                          [(True, dt.date(2025, 1, 1), dt.date(2025, 2, 1))] * 2),)))
    def _(landing, t):
        write_extract(landing / "exports/gacc_exports_jan-feb.csv", mag_rows("202501-202502", {"116": 19_000, "304": 13_000}), mtime=t)

    @case("hs6_in_name", "a file name holding an HS6 code before the month: the first valid YYYYMM is the period",
          Expect("exports/hs850511_202312.csv", rows=3, load={"period_source": "file name", "period_start": dt.date(2023, 12, 1)}))
    def _(landing, t):
        write_extract(landing / "exports/hs850511_202312.csv", mag_rows("", DEFAULT_KG), order=without(ZH_ORDER, "period"), mtime=t)

    # ------------------------------------------------------------------ numbers
    @case("fullwidth_separators_and_nulls", "thousands separators ',' and full-width '，'; null tokens ?, -, —, empty",
          Expect("exports/numbers_202504.csv", rows=4,
                 checks=((_rows_sql("partner_code, quantity, unit, quantity2, unit2, value"),
                          [("116", 12345, "千克", None, None, 641940),
                           ("133", 1234567, "千克", None, None, 59259216),
                           ("304", 2000, "千克", None, None, None),
                           ("502", None, None, None, None, 15000)]),)))
    def _(landing, t):
        rows = [
            {"period": "202504", "hs8": MAG, "partner_code": "116", "quantity": "12,345", "unit": "千克",
             "quantity2": "?", "unit2": "?", "value": "641，940"},
            {"period": "202504", "hs8": MAG, "partner_code": "133", "quantity": "1，234，567", "unit": "千克",
             "quantity2": "-", "unit2": "-", "value": "59,259,216"},
            {"period": "202504", "hs8": MAG, "partner_code": "304", "quantity": "2,000", "unit": "千克",
             "quantity2": "—", "unit2": "—", "value": "—"},
            {"period": "202504", "hs8": MAG, "partner_code": "502", "quantity": "", "unit": "",
             "quantity2": "", "unit2": "", "value": "15,000"},
        ]
        write_extract(landing / "exports/numbers_202504.csv", rows, mtime=t)

    @case("usd_and_cny_same_month", "a USD and a CNY download of the same month and keys (the currency is part of the key)",
          Expect("exports/usd_202505.csv", rows=3, load={"currency": "USD"},
                 checks=((_rows_sql("currency, value"), [("USD", 624000), ("USD", 467500), ("USD", 312500)]),)),
          Expect("exports/cny_202505.csv", rows=3, load={"currency": "CNY"},
                 checks=((_rows_sql("currency, value"), [("CNY", 4480320), ("CNY", 3356650), ("CNY", 2243750)]),)))
    def _(landing, t):
        write_extract(landing / "exports/usd_202505.csv", mag_rows("202505", DEFAULT_KG), mtime=t)
        write_extract(landing / "exports/cny_202505.csv", mag_rows("202505", DEFAULT_KG, currency="CNY"), currency="CNY", mtime=t + 1)

    # ------------------------------------------------------------------ units
    @case("tonnes_for_kg_code", "quantities in 吨 (tonnes) for a kg code: converted, the conversion recorded on the load",
          Expect("exports/tonnes_202506.csv", rows=3,
                 load={"unit_conversions": "3 row(s) converted 吨 -> 千克 (x1000)"},
                 checks=((_rows_sql("quantity, unit, unit_code, declared_unit_code, unit_factor, quantity * unit_factor"),
                          [(12, "吨", "T", "09", 1000, 12000), (8.5, "吨", "T", "09", 1000, 8500),
                           (6.25, "吨", "T", "09", 1000, 6250)]),)))
    def _(landing, t):
        rows = mag_rows("202506", DEFAULT_KG, unit="吨")
        for r in rows:
            r["quantity"] = f"{r['quantity'] / 1000:g}"
        write_extract(landing / "exports/tonnes_202506.csv", rows, mtime=t)

    # ------------------------------------------------------------------ the platform's row cap
    @case("exactly_10000_rows", "exactly 10,000 data rows: loads, with a warning that the download was probably truncated",
          Expect("exports/capped_202507.csv", rows=10_000, warnings=("exactly 10,000 data rows", "probably truncated"),
                 checks=(("SELECT count(DISTINCT hs8), count(DISTINCT partner_code), max(row_number) FROM raw.customs_rows "
                          "WHERE source_file = $rel", [(50, 200, 10_000)]),)))
    def _(landing, t):
        codes, partners = _kg_codes(50), _partner_codes(200)
        rows = [{"period": "202507", "hs8": code, "commodity_name": "", "partner_code": partner, "partner_name": "",
                 "quantity": 100 + (i * 37) % 900, "unit": "千克", "quantity2": 0, "unit2": "?",
                 "value": (100 + (i * 37) % 900) * 5}
                for i, (code, partner) in enumerate((c, p) for c in codes for p in partners)]
        write_extract(landing / "exports/capped_202507.csv", rows, mtime=t)

    # ------------------------------------------------------------------ revisions and repeats
    @case("revised_by_later_file", "a later file with the same keys and new numbers supersedes the earlier load",
          Expect(REVISED_V1_FILE, rows=3),
          Expect(REVISED_V2_FILE, rows=3,
                 checks=(("""SELECT r.partner_code, r.quantity FROM raw.customs_rows r JOIN raw.customs_loads l USING (load_id)
                             WHERE r.period_start = DATE '2025-08-01'
                             QUALIFY l.load_seq = max(l.load_seq) OVER (PARTITION BY r.partner_code) ORDER BY 1""",
                          sorted(REVISED_V2.items())),)))
    def _(landing, t):
        write_extract(landing / REVISED_V1_FILE, mag_rows("202508", REVISED_V1), mtime=t)
        write_extract(landing / REVISED_V2_FILE, mag_rows("202508", REVISED_V2), mtime=t + 1)

    @case("revised_in_place", "the first version of a file that is later changed in place (see revise_in_place)",
          Expect(REVISED_IN_PLACE, rows=3))
    def _(landing, t):
        write_extract(landing / REVISED_IN_PLACE, mag_rows("202511", REVISION_V1), mtime=t)

    @case("same_file_twice", "the same download twice, under another name: loaded once, the copy skipped",
          Expect("exports/202509_magnets.csv", rows=3),
          Expect("exports/copies/202509_magnets (1).csv", skipped=True))
    def _(landing, t):
        data = render_extract(mag_rows("", DEFAULT_KG), order=without(ZH_ORDER, "period"))
        write_bytes(landing / "exports/202509_magnets.csv", data, mtime=t)
        write_bytes(landing / "exports/copies/202509_magnets (1).csv", data, mtime=t + 1)

    @case("same_bytes_other_month", "byte-identical files named for two months: the name is part of the data, both load",
          Expect("exports/202301_magnets.csv", rows=3, load={"period_start": dt.date(2023, 1, 1)}),
          Expect("exports/202302_magnets.csv", rows=3, load={"period_start": dt.date(2023, 2, 1)}))
    def _(landing, t):
        data = render_extract(mag_rows("", {"116": 1_000, "304": 800, "502": 600}), order=without(ZH_ORDER, "period"))
        write_bytes(landing / "exports/202301_magnets.csv", data, mtime=t)
        write_bytes(landing / "exports/202302_magnets.csv", data, mtime=t + 1)

    @case("imports_flow", "an imports download (flow from the folder), English headers, GB18030 Chinese names",
          Expect("imports/202509_rare_earth_metals.csv", rows=2, load={"flow": "imports", "encoding": "gb18030"}))
    def _(landing, t):
        rows = [{"period": "202509", "hs8": "28053011", "commodity_name": "钕", "partner_code": "116", "partner_name": "日本",
                 "quantity": 1_200, "unit": "Kilogram", "quantity2": 0, "unit2": "?", "value": 96_000},
                {"period": "202509", "hs8": "28053011", "commodity_name": "钕", "partner_code": "601", "partner_name": "澳大利亚",
                 "quantity": 800, "unit": "Kilogram", "quantity2": 0, "unit2": "?", "value": 62_400}]
        write_extract(landing / "imports/202509_rare_earth_metals.csv", rows, lang="en", order=EN_ORDER, mtime=t)

    @case("blank_lines", "an empty line between rows, a ',,,,' row and trailing empty lines: ignored, rows keep their line",
          Expect("exports/blank_lines_202510.csv", rows=3, warnings=("1 empty row(s)",),
                 checks=((_rows_sql("row_number, partner_code"), [(1, "116"), (3, "304"), (4, "502")]),)))
    def _(landing, t):
        lines = render_extract(mag_rows("202510", DEFAULT_KG)).split(b"\r\n")  # header, 3 rows, ''
        data = b"\r\n".join([lines[0], lines[1], b"", lines[2], lines[3], b",,,,,,,,,,", b"", b""])
        write_bytes(landing / "exports/blank_lines_202510.csv", data, mtime=t)

    @case("no_final_line_break", "the last row is complete (closing quote) but has no line break: loads",
          Expect("exports/no_final_newline_202512.csv", rows=3))
    def _(landing, t):
        write_extract(landing / "exports/no_final_newline_202512.csv", mag_rows("202512", DEFAULT_KG),
                      trailing_comma=False, final_line_end=False, mtime=t)

    # ------------------------------------------------------------------ truncated files
    @case("truncated_mid_row", "a download cut off inside a quoted value of its last row",
          Expect("exports/truncated_202506.csv", reject=("a quoted value is never closed", "cut off mid-row", "truncated"),
                 line=4, row=3, column="第一数量"))
    def _(landing, t):
        data = render_extract(mag_rows("202506", DEFAULT_KG))
        last = data.rstrip(b"\r\n").rfind(b"\n") + 1
        fields = data[last:].split(b'","')
        write_bytes(landing / "exports/truncated_202506.csv", data[:last] + b'","'.join(fields[:5]) + b'","' + fields[5][:3], mtime=t)

    @case("truncated_short_row", "a download cut off between two values of its last row",
          Expect("exports/truncated_fields_202506.csv", reject=("the row has 4 of the header's 10 columns", "cut off mid-row"),
                 line=4, row=3, column="贸易伙伴编码"))
    def _(landing, t):
        data = render_extract(mag_rows("202506", DEFAULT_KG))
        last = data.rstrip(b"\r\n").rfind(b"\n") + 1
        fields = data[last:].split(b'","')
        write_bytes(landing / "exports/truncated_fields_202506.csv", data[:last] + b'","'.join(fields[:4]) + b'"', mtime=t)

    @case("truncated_in_last_value", "unquoted, cut inside the last value of the last row (no line break at the end)",
          Expect("exports/truncated_value_202506.csv", reject=("ends mid-row", "'3125'", "truncated"), line=4, row=3, column="美元"))
    def _(landing, t):
        data = render_extract(plain(mag_rows("202506", DEFAULT_KG)), quote_all=False, trailing_comma=False)
        write_bytes(landing / "exports/truncated_value_202506.csv", data[:-4], mtime=t)  # '312500\r\n' -> '3125'

    @case("truncated_mid_character", "a GB18030 download cut off inside a two-byte character",
          Expect("exports/truncated_char_202506.csv", reject=("ends inside a multi-byte character", "truncated"),
                 line=4, column="贸易伙伴名称"))
    def _(landing, t):
        data = render_extract(mag_rows("202506", DEFAULT_KG))
        cut = data.rfind("美国".encode("gb18030")) + 1
        write_bytes(landing / "exports/truncated_char_202506.csv", data[:cut], mtime=t)

    # ------------------------------------------------------------------ empty files
    @case("empty_file", "0 bytes: a failed download",
          Expect("exports/202506_empty.csv", reject=("empty file (0 bytes)",)))
    def _(landing, t):
        write_bytes(landing / "exports/202506_empty.csv", b"", mtime=t)

    @case("header_only", "a header and no rows: the query returned nothing",
          Expect("exports/header_only_202506.csv", reject=("header only, no data rows",)))
    def _(landing, t):
        write_extract(landing / "exports/header_only_202506.csv", [], mtime=t)

    # ------------------------------------------------------------------ headers
    @case("missing_required_header", "no quantity column (第一数量)",
          Expect("exports/no_quantity_202506.csv", reject=("header: required column(s) missing: '第一数量' / 'Quantity'",),
                 line=1, column="第一数量"))
    def _(landing, t):
        write_extract(landing / "exports/no_quantity_202506.csv", mag_rows("202506", DEFAULT_KG),
                      order=without(ZH_ORDER, "quantity"), mtime=t)

    @case("unknown_header", "an unknown column 'Port' (column 4) in an English header",
          Expect("exports/unknown_column_202506.csv", reject=("unrecognised column(s) 'Port' (column 4)",), line=1, column="Port"))
    def _(landing, t):
        order = EN_ORDER[:3] + ("port",) + EN_ORDER[3:]
        write_extract(landing / "exports/unknown_column_202506.csv", mag_rows("202506", DEFAULT_KG, lang="en", port="Ningbo"),
                      lang="en", order=order, header_override={"port": "Port"}, mtime=t)

    @case("two_currencies", "both 美元 and 人民币 in one file: the currencies are never summed, so never mixed in a file",
          Expect("exports/both_currencies_202506.csv", reject=("exactly one value column", "found both"), line=1))
    def _(landing, t):
        rows = [dict(r, cny=round(r["value"] * CNY_PER_USD)) for r in mag_rows("202506", DEFAULT_KG)]
        write_extract(landing / "exports/both_currencies_202506.csv", rows, order=ZH_ORDER + ("cny",),
                      header_override={"cny": "人民币"}, mtime=t)

    @case("semicolon_separated", "re-saved by a spreadsheet set to ';' as list separator",
          Expect("exports/semicolons_202506.csv", reject=("unrecognised column(s)", "separated by semicolons"), line=1))
    def _(landing, t):
        data = render_extract(plain(mag_rows("202506", DEFAULT_KG)), quote_all=False, trailing_comma=False)
        write_bytes(landing / "exports/semicolons_202506.csv", data.replace(b",", b";"), mtime=t)

    # ------------------------------------------------------------------ encodings that cannot be read
    @case("binary_xlsx", "an Excel workbook saved with a .csv name",
          Expect("exports/202506_workbook.csv", reject=("binary content", "Excel .xlsx")))
    def _(landing, t):
        write_bytes(landing / "exports/202506_workbook.csv", b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4, mtime=t)

    @case("binary_nul", "a binary file (NUL bytes)",
          Expect("exports/202506_binary.csv", reject=("binary content: NUL byte at offset 15",)))
    def _(landing, t):
        write_bytes(landing / "exports/202506_binary.csv", b"SQLite format 3\x00\x10\x00\x01\x01" + bytes(64), mtime=t)

    @case("utf16", "UTF-16 text (a spreadsheet's 'Unicode text')",
          Expect("exports/utf16_202506.csv", reject=("UTF-16 text", "save it as UTF-8 or GB18030")))
    def _(landing, t):
        write_extract(landing / "exports/utf16_202506.csv", mag_rows("202506", DEFAULT_KG), encoding="utf-16", mtime=t)

    @case("invalid_bytes", "bytes that are neither UTF-8 nor GB18030 inside a value of row 2",
          Expect("exports/bad_bytes_202506.csv", reject=("not readable as UTF-8 or GB18030",), line=3, column="商品名称"))
    def _(landing, t):
        data = render_extract(mag_rows("202506", DEFAULT_KG))
        second = data.split(b"\r\n")[2]
        write_bytes(landing / "exports/bad_bytes_202506.csv",
                    data.replace(second, second.replace("稀土".encode("gb18030"), b"\xff\xff", 1)), mtime=t)

    @case("corrupt_utf8", "a UTF-8 file with one damaged byte: not misread as GB18030",
          Expect("exports/corrupt_utf8_202506.csv", reject=("invalid bytes in a UTF-8 file",), line=4, column="贸易伙伴名称"))
    def _(landing, t):
        data = render_extract(mag_rows("202506", DEFAULT_KG), encoding="utf-8")
        at = data.rfind("美国".encode("utf-8"))
        write_bytes(landing / "exports/corrupt_utf8_202506.csv", data[:at] + b"\xc0" + data[at + 1:], mtime=t)

    @case("big5_headers", "a Big5 (traditional Chinese) file: read as GB18030 its header is unrecognised",
          Expect("exports/big5_202506.csv", reject=("unrecognised column(s)", "Big5"), line=1))
    def _(landing, t):
        header = ["數據年月", "商品編碼", "貿易夥伴編碼", "第一數量", "第一計量單位", "美元"]
        body = "\r\n".join([",".join(header), "202506,85051110,116,12000,千克,624000", ""])
        write_bytes(landing / "exports/big5_202506.csv", body.encode("big5"), mtime=t)

    # ------------------------------------------------------------------ values
    @case("non_numeric_quantity", "a quantity that is not a number (row 2)",
          Expect("exports/bad_quantity_202506.csv", reject=("not a number", "'12,3a4'"), line=3, row=2, column="第一数量"))
    def _(landing, t):
        rows = mag_rows("202506", DEFAULT_KG)
        rows[1]["quantity"] = "12,3a4"
        write_extract(landing / "exports/bad_quantity_202506.csv", rows, mtime=t)

    @case("negative_quantity", "a negative quantity (row 3)",
          Expect("exports/negative_202506.csv", reject=("negative numbers are not valid", "'-500'"), line=4, row=3, column="第一数量"))
    def _(landing, t):
        rows = mag_rows("202506", DEFAULT_KG)
        rows[2]["quantity"] = "-500"
        write_extract(landing / "exports/negative_202506.csv", rows, mtime=t)

    @case("pieces_for_kg_code", "个 (pieces) for 85051110, declared in kg: no conversion exists",
          Expect("exports/pieces_202506.csv", reject=("unit '个' cannot be converted to 千克 (Kilogram)", "commodity 85051110"),
                 line=3, row=2, column="第一计量单位"))
    def _(landing, t):
        rows = mag_rows("202506", DEFAULT_KG)
        rows[1]["unit"] = "个"
        write_extract(landing / "exports/pieces_202506.csv", rows, mtime=t)

    @case("unknown_unit", "a unit we do not know ('bags')",
          Expect("exports/unknown_unit_202506.csv", reject=("unknown unit", "'bags'"), line=2, row=1, column="Unit"))
    def _(landing, t):
        rows = mag_rows("202506", DEFAULT_KG, lang="en")
        rows[0]["unit"] = "bags"
        write_extract(landing / "exports/unknown_unit_202506.csv", rows, lang="en", order=EN_ORDER, mtime=t)

    @case("quantity_without_unit", "a quantity with the unit '?' (row 2)",
          Expect("exports/no_unit_202506.csv", reject=("a quantity without a unit",), line=3, row=2, column="第一计量单位"))
    def _(landing, t):
        rows = mag_rows("202506", DEFAULT_KG)
        rows[1]["unit"] = "?"
        write_extract(landing / "exports/no_unit_202506.csv", rows, mtime=t)

    @case("hs8_leading_zero_dropped", "a 7-digit commodity code (a spreadsheet dropped the leading zero)",
          Expect("exports/short_code_202506.csv", reject=("commodity codes must be 8 digits", "'1012100'"),
                 line=2, row=1, column="商品编码"))
    def _(landing, t):
        rows = mag_rows("202506", {"116": 100}, hs8="1012100")
        write_extract(landing / "exports/short_code_202506.csv", rows, mtime=t)

    @case("duplicate_keys", "the same key on rows 1 and 3",
          Expect("exports/duplicates_202506.csv",
                 reject=("duplicate key: rows 1, 3 (lines 2, 4)", "('数据年月', '商品编码', '贸易伙伴编码') = (202506, 85051110, 116)"),
                 line=2, row=1, column="贸易伙伴编码"))
    def _(landing, t):
        rows = mag_rows("202506", {"116": 100, "304": 200}) + mag_rows("202506", {"116": 300})
        write_extract(landing / "exports/duplicates_202506.csv", rows, mtime=t)

    @case("extra_field_mid_file", "an unquoted '1,000' splits a value in two on line 3 (not the last line)",
          Expect("exports/extra_field_202506.csv", reject=("the row has 11 values where the header has 10 columns",
                                                           "not a GACC download as saved"), line=3, row=2))
    def _(landing, t):
        data = render_extract(mag_rows("202506", DEFAULT_KG)).split(b"\r\n")
        data[2] = data[2].replace(b'"8,500"', b"8,500")
        write_bytes(landing / "exports/extra_field_202506.csv", b"\r\n".join(data), mtime=t)

    # ------------------------------------------------------------------ periods that cannot be used
    @case("no_period_anywhere", "no 数据年月 column and no period in the file name",
          Expect("exports/magnets_latest.csv", reject=("no period", "Name single-month downloads YYYYMM",
                                                       "cumulative downloads YYYYMM-YYYYMM")))
    def _(landing, t):
        write_extract(landing / "exports/magnets_latest.csv", mag_rows("", DEFAULT_KG), order=without(ZH_ORDER, "period"), mtime=t)

    @case("bad_period_value", "数据年月 '2025-13' on row 2",
          Expect("exports/bad_month.csv", reject=("the period must be a month written YYYYMM", "'2025-13'"),
                 line=3, row=2, column="数据年月"))
    def _(landing, t):
        rows = mag_rows("202506", DEFAULT_KG)
        rows[1]["period"] = "2025-13"
        write_extract(landing / "exports/bad_month.csv", rows, mtime=t)

    @case("future_period_column", "数据年月 next month (in the future)",
          Expect("exports/future.csv", reject=("period in the future", f"'{next_month:%Y%m}'"), line=2, row=1, column="数据年月"))
    def _(landing, t):
        write_extract(landing / "exports/future.csv", mag_rows(f"{next_month:%Y%m}", DEFAULT_KG), mtime=t)

    @case("current_month_in_name", "a file named for the current month, which is not over yet",
          Expect(f"exports/{this_month:%Y%m}_magnets.csv", reject=("file name", "in the future or not over yet")))
    def _(landing, t):
        write_extract(landing / f"exports/{this_month:%Y%m}_magnets.csv", mag_rows("", DEFAULT_KG),
                      order=without(ZH_ORDER, "period"), mtime=t)

    # ------------------------------------------------------------------ placement
    @case("outside_flow_folder", "a file at the top of the landing directory: exports or imports is unknown",
          Expect("202506_magnets.csv", reject=("not inside a flow folder",)))
    def _(landing, t):
        write_extract(landing / "202506_magnets.csv", mag_rows("202506", DEFAULT_KG), mtime=t)

    @case("not_csv_suffix", "an .xlsx file",
          Expect("exports/202506_magnets.xlsx", reject=("not a CSV file (suffix '.xlsx')",)))
    def _(landing, t):
        write_bytes(landing / "exports/202506_magnets.xlsx", b"PK\x03\x04" + bytes(32), mtime=t)

    return cases


def revise_in_place(landing: Path, mtime: float | None = None) -> Path:
    """Change REVISED_IN_PLACE in place: same name, same keys, new numbers (REVISION_V2)."""
    return write_extract(landing / REVISED_IN_PLACE, mag_rows("202511", REVISION_V2), mtime=mtime)


def write_case(landing: Path, case: Case, index: int = 0) -> list[Path]:
    case.write(landing, BASE_MTIME + index * 100)
    return [landing / e.rel for e in case.expects]


def build_corpus(landing: Path, today: dt.date | None = None) -> list[Case]:
    """Write every case's files into `landing` (a landing directory); return the cases."""
    cases = CASES(today or dt.date.today())
    for index, case in enumerate(cases):
        write_case(landing, case, index)
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("landing", type=Path)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date.today())
    args = parser.parse_args(argv)
    cases = build_corpus(args.landing, args.today)
    for case in cases:
        for e in case.expects:
            print(f"{case.name:32} {e.rel:48} {e.outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
