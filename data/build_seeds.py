#!/usr/bin/env python3
"""Build the dbt reference seeds from the GACC code lists.

Inputs (read only): ``data/reference/gacc/*.csv`` (chinautils copies, MIT licence,
see ``data/reference/gacc/README.md``). ``dbt/seeds/published_figures.csv`` is a
verbatim copy of the curated published-figures reference; it is only (re)copied
when ``--published PATH`` is given, otherwise it is checked to be ASCII and kept.

Outputs (UTF-8, header row, comma separated, no trailing comma, RFC 4180 quoting
via the csv module, LF line endings) in ``dbt/seeds/``:

* ``gacc_partners.csv``        partner_code, partner_iso3, partner_name_en,
                               partner_name_zh, region, is_eu, note
* ``gacc_commodities.csv``     every 2023 HS8 code with first / second unit
* ``gacc_units.csv``           every unit code of the HS8 lists (+ tonne 'T')
* ``gacc_unit_aliases.csv``    every spelling a download may carry -> unit_code
* ``gacc_customs_regimes.csv`` regime_code, regime_name_zh, regime_name_en
* ``gacc_provinces.csv``       province_code, province_name_zh, province_name_en
* ``published_figures.csv``    verbatim copy of the published-figures reference

Deterministic and idempotent: rows are sorted by code, and a file is only
rewritten when its content changes.

Usage: ``.venv/bin/python data/build_seeds.py [--out DIR] [--published PATH]``
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GACC = ROOT / "data" / "reference" / "gacc"
DEFAULT_OUT = ROOT / "dbt" / "seeds"

# --------------------------------------------------------------------------
# Hand-written ISO 3166-1 alpha-3 mapping for every GACC partner code.
# Territories GACC lists separately but ISO does not -> sovereign/containing
# ISO3. Non-country aggregates -> user-assigned X codes (documented in `note`).
# 'WLD' and 'EU' are reserved for aggregates and never used here.
# --------------------------------------------------------------------------
ISO3 = {
    # 1xx Asia
    "101": "AFG", "102": "BHR", "103": "BGD", "104": "BTN", "105": "BRN",
    "106": "MMR", "107": "KHM", "108": "CYP", "109": "PRK", "110": "HKG",
    "111": "IND", "112": "IDN", "113": "IRN", "114": "IRQ", "115": "ISR",
    "116": "JPN", "117": "JOR", "118": "KWT", "119": "LAO", "120": "LBN",
    "121": "MAC", "122": "MYS", "123": "MDV", "124": "MNG", "125": "NPL",
    "126": "OMN", "127": "PAK", "128": "PSE", "129": "PHL", "130": "QAT",
    "131": "SAU", "132": "SGP", "133": "KOR", "134": "LKA", "135": "SYR",
    "136": "THA", "137": "TUR", "138": "ARE", "139": "YEM", "141": "VNM",
    "142": "CHN", "143": "TWN", "144": "TLS", "145": "KAZ", "146": "KGZ",
    "147": "TJK", "148": "TKM", "149": "UZB", "199": "XAS",
    # 2xx Africa
    "201": "DZA", "202": "AGO", "203": "BEN", "204": "BWA", "205": "BDI",
    "206": "CMR", "207": "ESP", "208": "CPV", "209": "CAF", "210": "ESP",
    "211": "TCD", "212": "COM", "213": "COG", "214": "DJI", "215": "EGY",
    "216": "GNQ", "217": "ETH", "218": "GAB", "219": "GMB", "220": "GHA",
    "221": "GIN", "222": "GNB", "223": "CIV", "224": "KEN", "225": "LBR",
    "226": "LBY", "227": "MDG", "228": "MWI", "229": "MLI", "230": "MRT",
    "231": "MUS", "232": "MAR", "233": "MOZ", "234": "NAM", "235": "NER",
    "236": "NGA", "237": "REU", "238": "RWA", "239": "STP", "240": "SEN",
    "241": "SYC", "242": "SLE", "243": "SOM", "244": "ZAF", "245": "ESH",
    "246": "SDN", "247": "TZA", "248": "TGO", "249": "TUN", "250": "UGA",
    "251": "BFA", "252": "COD", "253": "ZMB", "254": "ZWE", "255": "LSO",
    "256": "ESP", "257": "SWZ", "258": "ERI", "259": "MYT", "260": "SSD",
    "299": "XAF",
    # 3xx Europe
    "301": "BEL", "302": "DNK", "303": "GBR", "304": "DEU", "305": "FRA",
    "306": "IRL", "307": "ITA", "308": "LUX", "309": "NLD", "310": "GRC",
    "311": "PRT", "312": "ESP", "313": "ALB", "314": "AND", "315": "AUT",
    "316": "BGR", "318": "FIN", "320": "GIB", "321": "HUN", "322": "ISL",
    "323": "LIE", "324": "MLT", "325": "MCO", "326": "NOR", "327": "POL",
    "328": "ROU", "329": "SMR", "330": "SWE", "331": "CHE", "334": "EST",
    "335": "LVA", "336": "LTU", "337": "GEO", "338": "ARM", "339": "AZE",
    "340": "BLR", "343": "MDA", "344": "RUS", "347": "UKR", "349": "SCG",
    "350": "SVN", "351": "HRV", "352": "CZE", "353": "SVK", "354": "MKD",
    "355": "BIH", "356": "VAT", "357": "FRO", "358": "SRB", "359": "MNE",
    "399": "XEE",
    # 4xx Latin America and the Caribbean
    "401": "ATG", "402": "ARG", "403": "ABW", "404": "BHS", "405": "BRB",
    "406": "BLZ", "408": "BOL", "409": "BES", "410": "BRA", "411": "CYM",
    "412": "CHL", "413": "COL", "414": "DMA", "415": "CRI", "416": "CUB",
    "417": "CUW", "418": "DOM", "419": "ECU", "420": "GUF", "421": "GRD",
    "422": "GLP", "423": "GTM", "424": "GUY", "425": "HTI", "426": "HND",
    "427": "JAM", "428": "MTQ", "429": "MEX", "430": "MSR", "431": "NIC",
    "432": "PAN", "433": "PRY", "434": "PER", "435": "PRI", "436": "BES",
    "437": "LCA", "438": "MAF", "439": "VCT", "440": "SLV", "441": "SUR",
    "442": "TTO", "443": "TCA", "444": "URY", "445": "VEN", "446": "VGB",
    "447": "KNA", "448": "SPM", "449": "ANT", "499": "XLA",
    # 5xx North America
    "501": "CAN", "502": "USA", "503": "GRL", "504": "BMU", "599": "XNA",
    # 6xx Oceania
    "601": "AUS", "602": "COK", "603": "FJI", "604": "PYF", "605": "PYF",
    "606": "NRU", "607": "NCL", "608": "VUT", "609": "NZL", "610": "NFK",
    "611": "PNG", "612": "PYF", "613": "SLB", "614": "TON", "615": "PYF",
    "616": "PYF", "617": "WSM", "618": "KIR", "619": "TUV", "620": "FSM",
    "621": "MHL", "622": "PLW", "623": "PYF", "625": "WLF", "699": "XOC",
    # 7xx / 9xx other
    "701": "XXX", "702": "XIO", "999": "XNP",
}

# EU-27 member states (2024-2025; United Kingdom is not a member).
EU27 = {
    "AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA",
    "DEU", "GRC", "HUN", "IRL", "ITA", "LVA", "LTU", "LUX", "MLT", "NLD",
    "POL", "PRT", "ROU", "SVK", "SVN", "ESP", "SWE",
}
# Separately listed GACC codes that are part of an EU member state's territory
# inside the EU (outermost regions, TFEU art. 349, and the Spanish North-African
# cities). They count as EU. Saint Martin (438) is excluded: the GACC code covers
# the whole island, half of which (Sint Maarten) is outside the EU.
EU_TERRITORIES = {
    "207": "Canary Islands: part of Spain (EU outermost region)",
    "210": "Ceuta: Spanish city, part of the EU (outside the customs union)",
    "256": "Melilla: Spanish city, part of the EU (outside the customs union)",
    "237": "Reunion: French overseas region, EU outermost region",
    "259": "Mayotte: French overseas region, EU outermost region",
    "420": "French Guiana: French overseas region, EU outermost region",
    "422": "Guadeloupe: French overseas region, EU outermost region",
    "428": "Martinique: French overseas region, EU outermost region",
}
ISO3_EXCEPTION_NOTES = {
    "142": "China itself (re-imports / goods returned); ISO3 CHN",
    "604": "Gambier Islands: part of French Polynesia; mapped to PYF",
    "605": "Marquesas Islands: part of French Polynesia; mapped to PYF",
    "612": "Society Islands: part of French Polynesia; mapped to PYF",
    "615": "Tuamotu Islands: part of French Polynesia; mapped to PYF",
    "616": "Tubuai (Austral) Islands: part of French Polynesia; mapped to PYF",
    "623": "French Polynesia (GACC also lists four of its island groups separately)",
    "409": "Bonaire: Caribbean Netherlands; mapped to BES",
    "436": "Saba: Caribbean Netherlands; mapped to BES",
    "438": "Saint Martin island (French and Dutch parts); mapped to MAF",
    "449": "Netherlands Antilles: dissolved 2010; ISO 3166-3 former code ANT",
    "349": "Serbia and Montenegro: historic (2003-2006); ISO 3166-3 former code SCG",
    "128": "Palestine, State of",
    "143": "Taiwan, China",
    "110": "Hong Kong SAR, China",
    "121": "Macao SAR, China",
    "999": "user-assigned X code: countries of neutral packaging (abolished 2008)",
    "199": "user-assigned X code: other Asia, not elsewhere specified",
    "299": "user-assigned X code: other Africa, not elsewhere specified",
    "399": "user-assigned X code: other Europe, not elsewhere specified",
    "499": "user-assigned X code: other Latin America, not elsewhere specified",
    "599": "user-assigned X code: other North America, not elsewhere specified",
    "699": "user-assigned X code: other Oceania, not elsewhere specified",
    "701": "user-assigned X code: countries (regions) unknown",
    "702": "user-assigned X code: UN and other international organisations",
}
REGION_BY_DIGIT = {
    "1": "Asia", "2": "Africa", "3": "Europe", "4": "Latin America",
    "5": "North America", "6": "Oceania", "7": "Other", "9": "Other",
}

PROVINCE_EN = {
    "11": "Beijing", "12": "Tianjin", "13": "Hebei", "14": "Shanxi",
    "15": "Inner Mongolia", "21": "Liaoning", "22": "Jilin", "23": "Heilongjiang",
    "31": "Shanghai", "32": "Jiangsu", "33": "Zhejiang", "34": "Anhui",
    "35": "Fujian", "36": "Jiangxi", "37": "Shandong", "41": "Henan",
    "42": "Hubei", "43": "Hunan", "44": "Guangdong", "45": "Guangxi",
    "46": "Hainan", "50": "Chongqing", "51": "Sichuan", "52": "Guizhou",
    "53": "Yunnan", "54": "Tibet", "61": "Shaanxi", "62": "Gansu",
    "63": "Qinghai", "64": "Ningxia", "65": "Xinjiang",
}

# --------------------------------------------------------------------------
# Units. The HS8 lists use WCO-style standard unit codes; code 01 ("Number of
# item") carries many Chinese measure words (个, 台, 辆 ...), all counts.
# Mass units share the base 09 (kilogram); every other unit is its own base
# with factor 1 (a count, a length or a volume is never converted to mass).
# (code, zh canonical, en canonical, dimension, base, factor)
# --------------------------------------------------------------------------
UNITS = [
    ("01", "个", "Number of item", "count", "01", "1"),
    ("02", "双", "Pair", "pairs", "02", "1"),
    ("04", "米", "Metre", "length", "04", "1"),
    ("05", "平方米", "Square Metre", "area", "05", "1"),
    ("06", "立方米", "Cubic Metre", "volume", "06", "1"),
    ("07", "升", "Litre", "volume", "07", "1"),
    ("09", "千克", "Kilogram", "mass", "09", "1"),
    ("21", "百个", "In Hundreds", "count", "21", "1"),
    ("31", "千个", "In Thousands", "count", "31", "1"),
    ("37", "千升", "Kilolitre", "volume", "37", "1"),
    ("49", "克拉", "Carat", "mass", "09", "0.0002"),
    ("58", "千瓦时", "Kilowatt-hour", "energy", "58", "1"),
    ("59", "克", "Gram", "mass", "09", "0.001"),
    ("63", "百万贝可", "Million Bq", "radioactivity", "63", "1"),
    ("T", "吨", "Metric ton", "mass", "09", "1000"),
]
# Extra spellings a download (or a hand-made file) may carry.
EXTRA_ALIASES = {
    "09": ["kg", "KG", "Kg", "kgs", "KGS", "Kilogram", "Kilograms", "kilogram",
           "kilograms", "KILOGRAM", "KILOGRAMS", "kilo", "kilos", "千克", "公斤"],
    "T": ["t", "T", "tonne", "tonnes", "Tonne", "Tonnes", "ton", "tons", "Ton",
          "Tons", "Metric ton", "Metric tons", "metric ton", "metric tons",
          "Metric Ton", "Metric Tons", "mt", "MT", "吨", "公吨"],
    "59": ["g", "gram", "grams", "Gram", "Grams", "GRAM", "克"],
    "49": ["ct", "carat", "carats", "Carats"],
    "01": ["pieces", "piece", "Pieces", "Piece", "pcs", "PCS", "pc", "PC",
           "Number of item", "Number of items", "number of item",
           "number of items", "item", "items", "unit", "units", "Unit", "Units",
           "个", "件"],
    "02": ["pair", "pairs", "Pairs", "双"],
    "04": ["m", "meter", "meters", "metre", "metres", "Meter", "Meters", "Metres"],
    "05": ["m2", "m²", "sq m", "square metre", "square metres", "square meter",
           "square meters", "Square Meter", "Square Meters", "Square Metres"],
    "06": ["m3", "m³", "cubic metre", "cubic metres", "cubic meter",
           "cubic meters", "Cubic Meter", "Cubic Meters", "Cubic Metres"],
    "07": ["l", "L", "litre", "litres", "liter", "liters", "Liter", "Liters",
           "Litres"],
    "21": ["hundreds", "Hundreds", "in hundreds"],
    "31": ["thousands", "Thousands", "in thousands"],
    "37": ["kl", "kL", "KL", "kilolitre", "kilolitres", "kiloliter",
           "kiloliters", "Kiloliter", "Kilolitres", "Kiloliters"],
    "58": ["kWh", "kwh", "KWH", "kilowatt-hour", "kilowatt-hours",
           "Kilowatt-hours", "kilowatt hour", "kilowatt hours"],
    "63": ["MBq", "mbq", "million bq", "Million Becquerel"],
}


def read_csv(name: str, encoding: str = "gb18030", fix=None) -> list[list[str]]:
    text = (GACC / name).read_bytes().decode(encoding)
    if fix:
        text = fix(text)
    return list(csv.reader(io.StringIO(text, newline="")))


def clean(s: str) -> str:
    """Drop control characters (a NUL hides in the Serbia and Montenegro row),
    collapse embedded line breaks (some HS8 names span two lines) and trim."""
    s = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", s)
    return re.sub(r"\s*[\r\n]+\s*", " ", s).strip()


def fix_en_hs8(text: str) -> str:
    # Three rows quote "herring-bone" inside a quoted field without escaping.
    fixed = text.replace('with "herring-bone",', 'with ""herring-bone"",')
    assert fixed.count('""herring-bone""') == 3, "unexpected en-hs8 content"
    return fixed


def build_partners() -> list[list[str]]:
    zh = {r[0]: r[1] for r in read_csv("zh-TradingPartner.csv")[1:]}
    en_clean = {r[0]: clean(r[1]) for r in
                read_csv("en-TradingPartner-cleaned-manually.csv", "utf-8")[1:]}
    # The raw English list: names may contain unquoted commas -> rejoin.
    en_raw = {r[0]: ",".join(r[1:-1]) for r in read_csv("en-TradingPartner.csv")[1:]}
    codes = sorted(zh)
    assert set(codes) == set(en_clean) == set(en_raw) == set(ISO3), (
        set(codes) ^ set(ISO3))
    rows = []
    for code in codes:
        iso3 = ISO3[code]
        assert re.fullmatch(r"[A-Z]{3}", iso3) and iso3 not in ("WLD", "EUU")
        region = REGION_BY_DIGIT[code[0]]
        is_eu = iso3 in EU27 or code in EU_TERRITORIES
        if code == "438":
            is_eu = False
        note = ISO3_EXCEPTION_NOTES.get(code) or EU_TERRITORIES.get(code, "")
        if code in ("207", "210", "256"):
            note = EU_TERRITORIES[code] + "; mapped to ESP"
        rows.append([code, iso3, en_clean[code], zh[code], region,
                     "true" if is_eu else "false", note])
    return rows


def build_commodities() -> tuple[list[list[str]], list[str]]:
    zh = read_csv("zh-hs8-2023.csv")
    en = read_csv("en-hs8-2023.csv", fix=fix_en_hs8)
    assert zh[0][0] == "商品编码" and en[0][0] == "CODES"
    for r in zh[1:] + en[1:]:
        assert len(r) == 8 and r[7] == "" and re.fullmatch(r"\d{8}", r[0]), r
    zh_by = {r[0]: r for r in zh[1:]}
    en_by = {r[0]: r for r in en[1:]}
    assert set(zh_by) == set(en_by) and len(zh_by) == len(zh) - 1
    canon_en = {u[0]: u[2] for u in UNITS}
    warnings = []
    rows = []
    for code in sorted(zh_by):
        z, e = zh_by[code], en_by[code]
        assert (z[3], z[5]) == (e[3], e[5]), (z, e)
        out = [code, clean(z[1]), clean(e[1])]
        for c, nzh, nen in ((z[3], z[4], e[4]), (z[5], z[6], e[6])):
            if c == "?":
                out += ["", "", ""]
                continue
            assert c in canon_en, c
            if c != "01" and nen != canon_en[c]:
                # e.g. 37025200 lists unit code 09 (千克) as "Metre" in English
                warnings.append(f"{code}: unit {c} named {nen!r} in en list; "
                                f"using {canon_en[c]!r}")
                nen = canon_en[c]
            out += [c, clean(nzh), clean(nen)]
        rows.append(out)
    return rows, warnings


def build_units(commodities) -> tuple[list[list[str]], list[list[str]]]:
    used = {r[3] for r in commodities} | {r[6] for r in commodities}
    used.discard("")
    known = {u[0] for u in UNITS}
    assert used <= known, used - known
    units = []
    for code, nzh, nen, dim, base, factor in UNITS:
        units.append([code, nzh, nen, dim, base, factor,
                      "true" if code in used else "false"])

    alias: dict[str, str] = {}

    def add(a: str, code: str):
        a = a.strip()
        if not a:
            return
        prev = alias.setdefault(a, code)
        assert prev == code, f"ambiguous alias {a!r}: {prev} vs {code}"

    for code, nzh, nen, *_ in UNITS:
        for a in (code if code == "T" else None, nzh, nen, nen.lower()):
            if a:
                add(a, code)
    for r in commodities:  # every name the lists use, zh and en
        for c, nzh, nen in ((r[3], r[4], r[5]), (r[6], r[7], r[8])):
            if c:
                add(nzh, c)
                add(nen, c)
                add(nen.lower(), c)
    for code, names in EXTRA_ALIASES.items():
        for a in names:
            add(a, code)
    aliases = sorted([[a, c] for a, c in alias.items()], key=lambda x: (x[1], x[0]))
    return units, aliases


def build_regimes() -> list[list[str]]:
    zh = {r[0]: clean(r[1]) for r in read_csv("zh-CustomsRegime.csv")[1:]}
    en = {r[0]: clean(r[1]) for r in read_csv("en-CustomsRegime.csv")[1:]}
    assert set(zh) == set(en)
    return [[c, zh[c], en[c]] for c in sorted(zh)]


def build_provinces() -> list[list[str]]:
    zh = {r[0]: clean(r[1]) for r in read_csv("china_customs_provinces.csv")[1:]}
    assert set(zh) == set(PROVINCE_EN), set(zh) ^ set(PROVINCE_EN)
    return [[c, zh[c], PROVINCE_EN[c]] for c in sorted(zh)]


def to_csv(header: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    # Straight double quotes inside a field become typographic ones: the CSV sniffers of
    # DuckDB (dbt seed, the ingest gate) misread doubled "" escapes in long files.
    w.writerows([[c.replace('"', "\u201d") if isinstance(c, str) else c for c in row] for row in rows])
    return buf.getvalue().encode("utf-8")


def write(path: Path, data: bytes) -> str:
    if path.exists() and path.read_bytes() == data:
        return "unchanged"
    path.write_bytes(data)
    return "written"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--published", type=Path, default=None,
                    help="copy this published_figures.csv verbatim into the seeds")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    partners = build_partners()
    commodities, warnings = build_commodities()
    units, aliases = build_units(commodities)
    files = {
        "gacc_partners.csv": to_csv(
            ["partner_code", "partner_iso3", "partner_name_en", "partner_name_zh",
             "region", "is_eu", "note"], partners),
        "gacc_commodities.csv": to_csv(
            ["hs8", "name_zh", "name_en", "unit1_code", "unit1_name_zh",
             "unit1_name_en", "unit2_code", "unit2_name_zh", "unit2_name_en"],
            commodities),
        "gacc_units.csv": to_csv(
            ["unit_code", "unit_name_zh", "unit_name_en", "dimension",
             "base_unit_code", "to_base_factor", "in_hs_list"], units),
        "gacc_unit_aliases.csv": to_csv(["alias", "unit_code"], aliases),
        "gacc_customs_regimes.csv": to_csv(
            ["regime_code", "regime_name_zh", "regime_name_en"], build_regimes()),
        "gacc_provinces.csv": to_csv(
            ["province_code", "province_name_zh", "province_name_en"],
            build_provinces()),
    }
    n_eu = sum(r[5] == "true" for r in partners)
    eu_members = {r[1] for r in partners if r[5] == "true"} & EU27
    assert eu_members == EU27, EU27 - eu_members

    # published_figures.csv: verbatim copy of the reference file (plain ASCII).
    # Pass --published PATH to (re)copy it; otherwise the existing seed is kept
    # and only checked.
    if args.published is not None:
        data = args.published.read_bytes()
        data.decode("ascii")  # raises if not ASCII
        files["published_figures.csv"] = data
    elif (out / "published_figures.csv").exists():
        (out / "published_figures.csv").read_bytes().decode("ascii")
    else:
        print("warning: published_figures.csv missing; pass --published PATH",
              file=sys.stderr)

    for name, data in files.items():
        status = write(out / name, data)
        nrows = len(list(csv.reader(io.StringIO(data.decode("utf-8"))))) - 1
        print(f"{status:9s} {out / name}  ({nrows} rows)")
    print(f"partners: {len(partners)} codes, {n_eu} flagged is_eu "
          f"(27 member states + {n_eu - 27} EU territories listed separately)")
    for w in warnings:
        print("note:", w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
