#!/usr/bin/env python3
"""Generate the bundled sample GACC export extracts (Jan 2024 - Dec 2025).

Writes 24 files ``gacc_exports_YYYYMM.csv`` into ``data/landing/exports/`` (or
``--out DIR``), formatted exactly like downloads from the GACC statistics
platform (http://stats.customs.gov.cn): GB18030, every field quoted (header
included), every line ending with a trailing comma, CRLF line endings,
thousands separators in numbers, codes as text with leading zeros. Chinese
headers in even months, English headers (different column order, alternating
"Supplimentary"/"Supplementary" spelling) in odd months.

WHAT IS PUBLISHED AND WHAT IS SYNTHETIC
---------------------------------------
Only HS 85051110 (rare-earth permanent magnets) carries published numbers: every
figure in ``dbt/seeds/published_figures.csv`` whose hs_scope is 85051110 is
reproduced, in kilograms = tonnes x 1000 exactly (China's exports to the world
and to the USA, India, Germany, Korea, Viet Nam and Japan in the months those
releases cover). Their sources are the press reports of the GACC releases
listed in the ``source`` column of that file: Reuters (via kitco.com,
timeslive.co.za, telegraphindia.com, goldsea.com), the Wall Street Journal (via
automotiveworld.com), Bloomberg (via thewest.com.au), DW, tradingeconomics.com,
metalnomist.com, SMM (atechmagnet.cn), rareearthexchanges.com, samarium.dev,
econotimes.com, asiacity.news, poland.co.pl, tippinsights.com, voice.lapaas.com,
ground.news and others. Three world months (2024-05, 2024-06, 2025-04) are
derived there from quoted growth rates. Where a published growth rate needs a
base month that no release quotes (e.g. USA 2024-05 from -93.3% YoY in 2025-05),
the base is back-computed from that rate (see ``MAGNET_T`` below).

EVERYTHING ELSE IS SYNTHETIC: the 85051110 months no release covers (2024-01..04,
2024-11, 2024-12, 2025-02, 2025-03; constrained only by the published
year-to-date totals), the split of each month over the partners no release
names, every US-dollar value, and all rows of the other 12 commodity codes
(85051190, 85051900 and the rare-earth metals and oxides). They are plausible,
smooth and deterministic (seeded RNG, no clock), not real statistics.

Usage:
    .venv/bin/python data/generate_sample.py            # write data/landing/exports/
    .venv/bin/python data/generate_sample.py --out DIR  # write elsewhere
    .venv/bin/python data/generate_sample.py --verify   # generate, then check
    .venv/bin/python data/generate_sample.py --verify-only [--out DIR]
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import random
import re
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GACC = ROOT / "data" / "reference" / "gacc"
SEEDS = ROOT / "dbt" / "seeds"
DEFAULT_OUT = ROOT / "data" / "landing" / "exports"
SEED = "gacc-sample-v1"

MONTHS = [(y, m) for y in (2024, 2025) for m in range(1, 13)]
YM = [f"{y}{m:02d}" for y, m in MONTHS]

ZH_HEADER = ["数据年月", "商品编码", "商品名称", "贸易伙伴编码", "贸易伙伴名称",
             "第一数量", "第一计量单位", "第二数量", "第二计量单位", "美元"]
# canonical field -> position in the Chinese header
FIELDS = ["ym", "hs8", "commodity", "partner_code", "partner", "qty1", "unit1",
          "qty2", "unit2", "usd"]
EN_NAMES = {"ym": "Date of data", "hs8": "Commodity code", "commodity": "Commodity",
            "partner_code": "Trading partner code", "partner": "Trading partner",
            "qty1": "Quantity", "unit1": "Unit", "qty2": None,
            "unit2": "Supplementary Unit", "usd": "US dollar"}
EN_ORDER = ["hs8", "commodity", "ym", "partner_code", "partner", "usd", "qty1",
            "unit1", "qty2", "unit2"]

# --------------------------------------------------------------------------
# 85051110 in tonnes. "P" = published (published_figures.csv), "D" = derived
# from a published growth rate, "S" = synthetic.
# --------------------------------------------------------------------------
WORLD_T = {
    # 2024: Jan-Apr synthetic, summing to 32812 - 4762 - 5150 - 5278 = 17622 (YTD Jul)
    "202401": 4250, "202402": 3820, "202403": 4710, "202404": 4842,
    "202405": 4762,  # D  1238/(1-0.74)
    "202406": 5150,  # D  3188/(1-0.381)
    "202407": 5278, "202408": 5325, "202409": 4915, "202410": 4725,  # P
    "202411": 5060, "202412": 5250,  # S (2024 total 58087 < 58152 broader-scope figure)
    "202501": 6357,  # P
    "202502": 3800, "202503": 5109,  # S, sum 8909 = 19132 - 6357 - 2628 - 1238
    "202504": 2628,  # D  1238/(1-0.529)
    "202505": 1238, "202506": 3188, "202507": 5577, "202508": 6146,  # P
    "202509": 5774, "202510": 5473, "202511": 6150, "202512": 5952,  # P
}
# Named partners, all 24 months (ISO3 -> 24 values, Jan 2024 .. Dec 2025).
MAGNET_T = {
    # USA: 2025-05 46.4 P (-93.3% YoY -> 2024-05 692.5 D); 2025-06 353 P; 2025-07 619 P
    # (+4.8% YoY -> 2024-07 590.6 D); 2025-08 590 P (-11.8% -> 668.9 D); 2025-09 420 P
    # (-29.5% -> 595.7 D); 2025-10 656 P (+4.5% -> 627.8 D); 2025-11 582 P;
    # 2025-12 564 P. H1 2025 = 2506 (published 2510, -30.6% YoY -> H1 2024 3610.9);
    # FY 2025 = 5937 (published 5933, -20.3% YoY -> FY 2024 7444.2).
    "USA": [560, 520, 610, 640, 692.5, 588.4, 590.6, 668.9, 595.7, 627.8, 665.0, 685.3,
            690, 480, 560, 376.6, 46.4, 353, 619, 590, 420, 656, 582, 564],
    # DEU: 2025-07 1116 P (+46% MoM -> 2025-06 764.4 D); 2025-09 1288 P (+27.9% YoY ->
    # 2024-09 1007.0 D); 2025-10 1118 P (+55.9% YoY -> 2024-10 717.1 D).
    "DEU": [900, 780, 960, 985, 950, 1020, 1010, 1040, 1007.0, 717.1, 880, 930,
            1180, 700, 1010, 520, 310, 764.4, 1116, 1190, 1288, 1118, 1210, 1150],
    # KOR: 2025-09 854 P (+84.5% YoY -> 462.9 D); 2025-10 569 P (+31.3% -> 433.4 D).
    "KOR": [380, 340, 410, 420, 400, 430, 440, 450, 462.9, 433.4, 450, 470,
            560, 330, 470, 240, 120, 300, 520, 600, 854, 569, 620, 600],
    # JPN: 2025-09 228 P (+20.8% -> 188.7 D); 2025-10 226 P (+30.2% -> 173.6 D);
    # 2025-11 305 P; 2025-12 280 P (+31.4% YoY -> 2024-12 213.1 D).
    "JPN": [190, 170, 200, 210, 205, 215, 200, 195, 188.7, 173.6, 200, 213.1,
            230, 150, 200, 110, 60, 120, 190, 210, 228, 226, 305, 280],
    # VNM: 2025-09 456 P (+57.5% MoM -> 2025-08 289.5 D; +18.3% YoY -> 2024-09 385.5 D).
    "VNM": [300, 260, 330, 340, 350, 360, 370, 380, 385.5, 360, 370, 390,
            420, 280, 380, 200, 95, 220, 300, 289.5, 456, 400, 430, 420],
    # IND: 2025-05 150 P; 2025-06 172 P.
    "IND": [170, 150, 190, 200, 205, 210, 215, 220, 200, 195, 210, 220,
            240, 160, 200, 130, 150, 172, 200, 230, 220, 210, 240, 230],
}
NAMED_CODES = {"USA": "502", "DEU": "304", "KOR": "133", "JPN": "116",
               "VNM": "141", "IND": "111"}
# EU H1 targets (sum over EU partners, tonnes): H1 2025 8360 P; H1 2024 from -22.4% YoY.
EU_H1_T = {2025: 8360.0, 2024: 8360.0 / (1 - 0.224)}

# Other partners: GACC code -> (ISO3, base weight, is_eu). Small ones skip months.
OTHERS = {
    "136": ("THA", 6.0, False), "122": ("MYS", 4.0, False), "429": ("MEX", 6.0, False),
    "327": ("POL", 5.0, True), "307": ("ITA", 7.0, True), "309": ("NLD", 6.0, True),
    "305": ("FRA", 5.0, True), "352": ("CZE", 4.0, True), "321": ("HUN", 3.0, True),
    "303": ("GBR", 4.0, False), "137": ("TUR", 4.0, False), "410": ("BRA", 4.0, False),
    "110": ("HKG", 5.0, False), "143": ("TWN", 5.0, False), "129": ("PHL", 4.0, False),
    "112": ("IDN", 3.0, False), "132": ("SGP", 2.5, False), "501": ("CAN", 3.0, False),
    "312": ("ESP", 3.5, True), "315": ("AUT", 2.5, True), "330": ("SWE", 2.0, True),
    "344": ("RUS", 3.0, False), "138": ("ARE", 1.5, False), "601": ("AUS", 1.5, False),
    "301": ("BEL", 2.0, True), "302": ("DNK", 1.5, True), "353": ("SVK", 1.5, True),
    "328": ("ROU", 1.0, True), "350": ("SVN", 0.9, True), "331": ("CHE", 1.5, False),
    "115": ("ISR", 1.0, False), "244": ("ZAF", 0.6, False), "402": ("ARG", 0.5, False),
    "131": ("SAU", 0.5, False),
}
SKIP_WEIGHT = 0.6  # partners with base weight <= this skip ~25% of months

# Other commodities: code -> (monthly total tonnes, USD/kg, partner pool, n partners)
METAL_POOL = ["116", "133", "502", "304", "309", "141", "111", "136", "122",
              "305", "307", "303", "143", "110", "315"]
METAL_POOL_W = [10, 7, 6, 5, 4, 4, 3, 2.5, 2, 2, 2, 1.5, 1.5, 1.5, 1]
OTHER_CODES = {
    "85051190": (1100.0, 6.5, None, None),      # other metal magnets (AlNiCo, SmCo...)
    "85051900": (24000.0, 2.6, None, None),     # other permanent magnets (ferrite)
    "28053011": (60.0, 70.0, METAL_POOL, (5, 12)),    # neodymium metal
    "28053012": (15.0, 300.0, METAL_POOL, (5, 9)),    # dysprosium metal
    "28053013": (12.0, 1050.0, METAL_POOL, (5, 8)),   # terbium metal
    "28053016": (35.0, 75.0, METAL_POOL, (5, 10)),    # praseodymium metal
    "28053029": (180.0, 25.0, METAL_POOL, (6, 12)),   # other RE metals, intermixed
    "28461010": (450.0, 2.0, METAL_POOL, (6, 12)),    # cerium oxide
    "28469013": (90.0, 57.0, METAL_POOL, (5, 11)),    # neodymium oxide
    "28469015": (18.0, 230.0, METAL_POOL, (5, 8)),    # dysprosium oxide
    "28469016": (14.0, 900.0, METAL_POOL, (5, 8)),    # terbium oxide
    "28469019": (320.0, 20.0, METAL_POOL, (6, 12)),   # other RE oxides
}
# April 2025 export controls on Dy and Tb (and others): damp those codes afterwards.
CONTROLLED = {"28053012", "28053013", "28469015", "28469016"}
CONTROL_FACTOR = {"202504": 0.35, "202505": 0.15, "202506": 0.25, "202507": 0.4,
                  "202508": 0.5, "202509": 0.5, "202510": 0.55, "202511": 0.6,
                  "202512": 0.6}
MAGNET_UV = 50.0  # USD/kg; published hints: 2024-07 48.7, 2024-08 47.0


# --------------------------------------------------------------------------
def rng(*key) -> random.Random:
    return random.Random(":".join([SEED, *map(str, key)]))


def read_gacc(name: str) -> list[list[str]]:
    text = (GACC / name).read_bytes().decode("gb18030")
    return list(csv.reader(io.StringIO(text, newline="")))


def load_names():
    partners_zh = {r[0]: r[1] for r in read_gacc("zh-TradingPartner.csv")[1:]}
    # raw English names, exactly as downloads carry them ("Korea, Rep." is split
    # by the unquoted comma in the list, so rejoin all middle fields)
    partners_en = {r[0]: ",".join(r[1:-1]) for r in read_gacc("en-TradingPartner.csv")[1:]}
    wanted = {"85051110"} | set(OTHER_CODES) | set(IMPORT_CODES)
    hs_zh = {r[0]: r[1].strip() for r in read_gacc("zh-hs8-2023.csv")[1:] if r[0] in wanted}
    hs_en = {r[0]: r[1].strip() for r in read_gacc("en-hs8-2023.csv")[1:] if r[0] in wanted}
    assert set(hs_zh) == set(hs_en) == wanted
    return partners_zh, partners_en, hs_zh, hs_en


def allocate(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split an integer total over keys proportionally (largest remainder,
    ties by key); every share >= 1."""
    keys = sorted(weights)
    wsum = sum(weights[k] for k in keys)
    raw = {k: total * weights[k] / wsum for k in keys}
    out = {k: int(math.floor(raw[k])) for k in keys}
    rest = total - sum(out.values())
    for k in sorted(keys, key=lambda k: (-(raw[k] - out[k]), k))[:rest]:
        out[k] += 1
    assert sum(out.values()) == total and min(out.values()) >= 1, (total, out)
    return out


def smooth(t: int, phase: float, amp: float = 0.08) -> float:
    return 1 + amp * math.sin(2 * math.pi * (t / 12 + phase))


def magnet_rows() -> dict[tuple[str, str], int]:
    """85051110 quantities in kg: {(ym, partner_code): kg}."""
    # base weights for every (month, other partner), before the EU factor
    present: dict[str, dict[str, float]] = {}
    for t, ym in enumerate(YM):
        w = {}
        for code, (iso, base, _eu) in OTHERS.items():
            r = rng("mag", code, ym)
            phase, noise, skip = rng("phase", code).random(), r.uniform(-.05, .05), r.random()
            if base <= SKIP_WEIGHT and skip < 0.25:
                continue
            trend = 1 + 0.15 * (rng("trend", code).random() - 0.5) * (t - 11.5) / 12
            w[code] = base * smooth(t, phase) * trend * (1 + noise)
        present[ym] = w

    named_kg = {(ym, NAMED_CODES[iso]): round(vals[t] * 1000)
                for iso, vals in MAGNET_T.items() for t, ym in enumerate(YM)}
    residual = {ym: WORLD_T[ym] * 1000 - sum(v for (y, _), v in named_kg.items() if y == ym)
                for ym in YM}
    assert min(residual.values()) > 100_000, residual

    def eu_h1(year: int, f: float) -> float:
        tot = 0.0
        for ym in YM:
            if ym.startswith(str(year)) and int(ym[4:]) <= 6:
                w = present[ym]
                weu = sum(v for c, v in w.items() if OTHERS[c][2]) * f
                wnon = sum(v for c, v in w.items() if not OTHERS[c][2])
                tot += named_kg[(ym, "304")] + residual[ym] * weu / (weu + wnon)
        return tot

    factor = {}
    for year, target_t in EU_H1_T.items():
        lo, hi = 0.01, 100.0
        for _ in range(200):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if eu_h1(year, mid) < target_t * 1000 else (lo, mid)
        factor[year] = math.sqrt(lo * hi)

    out = dict(named_kg)
    for ym in YM:
        f = factor[int(ym[:4])]
        w = {c: v * (f if OTHERS[c][2] else 1) for c, v in present[ym].items()}
        for code, kg in allocate(residual[ym], w).items():
            out[(ym, code)] = kg
    return out


def other_rows(hs8: str) -> dict[tuple[str, str], int]:
    total_t, _uv, pool, npart = OTHER_CODES[hs8]
    out = {}
    for t, ym in enumerate(YM):
        r = rng("qty", hs8, ym)
        total = total_t * smooth(t, rng("phase", hs8).random(), 0.12) * r.uniform(0.85, 1.15)
        if hs8 in CONTROLLED:
            total *= CONTROL_FACTOR.get(ym, 1.0)
        if pool is None:  # magnets: the same spread of partners as 85051110
            codes = sorted(set(NAMED_CODES.values()) | set(OTHERS))
            weights = {"502": 9, "304": 10, "133": 6, "116": 4, "141": 5, "111": 4}
            w = {}
            for c in codes:
                base = weights.get(c) or OTHERS[c][1]
                if base <= SKIP_WEIGHT and r.random() < 0.25:
                    continue
                w[c] = base * smooth(t, rng("phase", hs8, c).random()) * r.uniform(0.9, 1.1)
        else:
            n = r.randint(*npart)
            chosen = ["116"]  # Japan every month
            cand = [c for c in pool if c != "116"]
            cw = [METAL_POOL_W[pool.index(c)] for c in cand]
            while len(chosen) < n:
                c = r.choices(cand, cw)[0]
                i = cand.index(c)
                cand.pop(i), cw.pop(i)
                chosen.append(c)
            w = {c: METAL_POOL_W[pool.index(c)] * r.uniform(0.6, 1.4) for c in chosen}
        for code, kg in allocate(round(total * 1000), w).items():
            out[(ym, code)] = kg
    return out


UV_TREND = {"85051110": -0.0004}  # per month, relative; other codes are flat


def month_uv(hs8: str, t: int) -> float:
    """Code-level USD/kg for month index t: a slow linear trend (85051110 only,
    -0.04 %/month) times +-3 % deterministic noise. The noise cycles through 12
    evenly spaced levels in a scrambled order (step 5 mod 12, code-specific
    offset), so any 12 consecutive months hold every level once: the MAD of a
    trailing 12-month window is ~1.5 % and no month (nor any partner row, with
    its +-0.3 % row noise) sits more than 3 MAD from the trailing median."""
    base = MAGNET_UV if hs8 == "85051110" else OTHER_CODES[hs8][1]
    slope = UV_TREND.get(hs8, 0.0)
    level = (5 * t + rng("uvphase", hs8).randrange(12)) % 12
    x = (level + 0.5) / 12
    return base * (1 + slope * (t - 11.5)) * (1 + 0.03 * (2 * x - 1))


def row_uv_noise(hs8: str, ym: str, rows: dict[str, int]) -> dict[str, float]:
    """Per-partner +-0.3 % noise, re-centred so the kg-weighted mean is exactly 1
    (the month's aggregate unit value stays at month_uv)."""
    f = {p: 1 + rng("uvr", hs8, ym, p).uniform(-0.003, 0.003) for p in rows}
    mean = sum(f[p] * kg for p, kg in rows.items()) / sum(rows.values())
    return {p: v / mean for p, v in f.items()}


def build() -> dict[str, list[tuple[str, str, int, int]]]:
    """{ym: [(hs8, partner_code, kg, usd), ...]} sorted by hs8, partner."""
    qty = {"85051110": magnet_rows()}
    for hs8 in OTHER_CODES:
        qty[hs8] = other_rows(hs8)
    months: dict[str, list] = {ym: [] for ym in YM}
    for hs8, rows in qty.items():
        for t, ym in enumerate(YM):
            month_rows = {p: kg for (y, p), kg in rows.items() if y == ym and kg > 0}
            if not month_rows:
                continue  # zero rows are not written
            uv = month_uv(hs8, t)
            noise = row_uv_noise(hs8, ym, month_rows)
            for partner, kg in month_rows.items():
                usd = max(1, round(kg * uv * noise[partner]))
                months[ym].append((hs8, partner, kg, usd))
    for ym in months:
        months[ym].sort()
    return months


def render(ym: str, rows, names) -> bytes:
    partners_zh, partners_en, hs_zh, hs_en = names
    month = int(ym[4:])
    chinese = month % 2 == 0
    if chinese:
        order = FIELDS
        header = ZH_HEADER
    else:
        order = EN_ORDER
        supp = "Supplimentary Quantity" if (month // 2) % 2 == 0 else "Supplementary Quantity"
        header = [EN_NAMES[f] if f != "qty2" else supp for f in order]
    lines = [header]
    for hs8, partner, kg, usd in rows:
        rec = {"ym": ym, "hs8": hs8,
               "commodity": hs_zh[hs8] if chinese else hs_en[hs8],
               "partner_code": partner,
               "partner": partners_zh[partner] if chinese else partners_en[partner],
               "qty1": f"{kg:,}", "unit1": "千克" if chinese else "Kilogram",
               "qty2": "0", "unit2": "?", "usd": f"{usd:,}"}
        lines.append([rec[f] for f in order])
    text = "".join(",".join('"' + v.replace('"', '""') + '"' for v in line) + ",\r\n"
                   for line in lines)
    return text.encode("gb18030")


def generate(out: Path, landing: Path | None = None) -> list[Path]:
    """Write the monthly export files into `out`, and the other download shapes (section below)
    under `landing` (exports/ and imports/), when given."""
    names = load_names()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    months = build()
    for ym, rows in months.items():
        path = out / f"gacc_exports_{ym}.csv"
        data = render(ym, rows, names)
        if not (path.exists() and path.read_bytes() == data):
            path.write_bytes(data)
        written.append(path)
    if landing is not None:
        written += write_shape_files(landing, months, names)
    return written


# ==========================================================================
# The other download shapes (multi-month queries, so each has a date column):
#   exports/magnets_world_202401-202512.csv        grouped by commodity only
#   exports/magnets_by_province_202401-202512.csv  commodity x registration place
#   exports/magnets_by_regime_202401-202512.csv    commodity x customs regime
#   imports/rare_earths_by_partner_202401-202512.csv  imports by partner
# The world totals are the sums of the monthly files' partner rows (so 85051110
# keeps every published figure, 1,238 t in May 2025 ...); the province and
# regime rows of a month and code add up to that world total exactly. The
# province and regime splits are SYNTHETIC (plausible weights: Ningbo in
# Zhejiang, Ganzhou in Jiangxi, Baotou in Inner Mongolia ...).
# Imports: the world totals of 25309020 (rare-earth ores) and 28469019 (other
# rare-earth oxides) are calibrated to the SMM reports of the GACC releases in
# published_figures.csv (flow imports); Myanmar's share of 28469019 in Aug 2024
# is the quoted 63 %. Every other import figure and the split over partners
# is SYNTHETIC.
# ==========================================================================
MAGNET_CODES = ("85051110", "85051190", "85051900")
SHAPES_SPAN = f"{YM[0]}-{YM[-1]}"
PROVINCE_WEIGHTS = {  # registration place -> weight for magnets (85051110); others vary around it
    "33": 30, "36": 14, "15": 12, "14": 9, "32": 8, "12": 6, "11": 5, "31": 5, "44": 4, "37": 3, "34": 2, "35": 2,
}
REGIME_WEIGHTS = {"10": 78, "15": 14, "14": 3, "33": 3, "34": 2}  # ordinary, processing, bonded
IMPORT_CODES = {  # code -> (partner weights, USD/kg)
    "25309020": ({"502": 85, "119": 6, "106": 4, "136": 3, "227": 2}, 3.2),   # ores: mostly Mountain Pass
    "28053019": ({"141": 70, "116": 20, "122": 10}, 45.0),                     # other RE metals: Viet Nam
    "28469019": ({"106": 70, "122": 14, "119": 10, "141": 4, "136": 2}, 25.0),  # other RE oxides: Myanmar
    "28469048": ({"106": 60, "119": 30, "122": 10}, 9.0),                      # mixed RE carbonate
}
# World import totals in tonnes where the SMM reports of the GACC releases give them or their
# growth rates (published_figures.csv); "D" = derived from a quoted rate or year-to-date total.
IMPORT_WORLD_T = {
    "25309020": {
        "202401": 2038.0,   # D  Jan-Feb 2025 7780.5 t +40% YoY -> Jan-Feb 2024 5557.5, minus Feb 2024
        "202402": 3519.5,   # D  Feb 2025 2886 t -18% YoY
        "202403": 6435.5, "202404": 6435.5,  # D  Jan-May 2024 = 18737 / 0.77, split evenly
        "202405": 5905.3,   # D  May 2025 1122 t -81% YoY
        "202407": 3449.2,   # D  Aug 2024 6864 t +99% MoM
        "202408": 6864.0,   # P
        "202501": 4894.5,   # D  Jan-Feb 7780.5 - Feb 2886
        "202502": 2886.0,   # P
        "202503": 6094.5,   # D  Jan-May 18737 - Jan-Feb - Apr - May
        "202504": 3740.0,   # D  May 1122 t -70% MoM
        "202505": 1122.0,   # P
    },
    "28469019": {
        "202401": 4051.9,   # D  Jan-Feb 2025 4163 t -40% YoY -> 6938.3, minus Feb 2024
        "202402": 2886.4,   # D  Feb 2025 1270 t -56% YoY
        "202403": 5729.45, "202404": 5729.45,  # D  Jan-May 2024 = 21925.6 / 0.92, split evenly
        "202405": 5435.0,   # D  May 2025 9076.4 t +67% YoY
        "202406": 4378.3,   # D  Jan-Aug 2024 35651.5 minus the other months
        "202407": 4252.0,   # D  Aug 2024 3189 t -25% MoM
        "202408": 3189.0,   # P
        "202501": 2893.0,   # D  Jan-Feb 4163 - Feb 1270
        "202502": 1270.0,   # P
        "202503": 2156.4,   # D  Jan-May 21925.6 minus the other months
        "202504": 6529.8,   # D  May 9076.4 t +39% MoM
        "202505": 9076.4,   # P
    },
}
IMPORT_SYNTHETIC_T = {"25309020": 4500.0, "28053019": 20.0, "28469019": 3800.0, "28469048": 300.0}
MYANMAR_SHARE = {("28469019", "202408"): 0.63}  # P (SMM: 63 % of the month's other RE oxides)


def _names_from_seed(name: str, code: str) -> dict[str, tuple[str, str]]:
    rows = csv.DictReader(open(SEEDS / f"{name}.csv", encoding="utf-8"))
    return {r[code]: (r[f"{code[:-5]}_name_zh"], r[f"{code[:-5]}_name_en"]) for r in rows}


def world_magnets(months: dict[str, list]) -> dict[tuple[str, str], tuple[int, int]]:
    """{(ym, hs8): (kg, usd)} of the magnet codes: the sums of the monthly files' partner rows."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for ym, rows in months.items():
        for hs8, _partner, kg, usd in rows:
            if hs8 in MAGNET_CODES:
                k, u = out.get((ym, hs8), (0, 0))
                out[(ym, hs8)] = (k + kg, u + usd)
    return out


def split_world(world, weights: dict[str, float], key: str) -> list[tuple[str, str, str, int, int]]:
    """[(ym, hs8, code, kg, usd)]: each world figure over `weights` (varied per month and code);
    kg and USD both add up to the world figure exactly."""
    out = []
    for (ym, hs8), (kg, usd) in sorted(world.items()):
        w = {c: v * rng(key, hs8, c, ym).uniform(0.85, 1.15) * (1 if hs8 == "85051110" else rng(key, hs8, c).uniform(0.5, 1.5))
             for c, v in weights.items()}
        kgs, usds = allocate(kg, w), allocate(usd, w)
        out += [(ym, hs8, c, kgs[c], usds[c]) for c in sorted(w)]
    return out


def import_rows() -> list[tuple[str, str, str, int, int]]:
    """[(ym, hs8, partner_code, kg, usd)] of the rare-earth imports by partner."""
    out = []
    for hs8, (weights, uv) in IMPORT_CODES.items():
        for t, ym in enumerate(YM):
            total_t = IMPORT_WORLD_T.get(hs8, {}).get(ym)
            if total_t is None:
                total_t = IMPORT_SYNTHETIC_T[hs8] * smooth(t, rng("iphase", hs8).random(), 0.15) * rng("iqty", hs8, ym).uniform(0.85, 1.15)
            w = {c: v * rng("ipartner", hs8, c, ym).uniform(0.8, 1.2) for c, v in weights.items()}
            if hs8 == "25309020" and ym >= "202504":
                w["502"] = 0.5  # MP Materials stopped shipping concentrate to China in April 2025
            total = round(total_t * 1000)
            share = MYANMAR_SHARE.get((hs8, ym))
            if share is not None:
                mmr = round(total * share)
                kgs = {"106": mmr, **allocate(total - mmr, {c: v for c, v in w.items() if c != "106"})}
            else:
                kgs = allocate(total, w)
            for c, kg in sorted(kgs.items()):
                noise = 1 + rng("iuv", hs8, c, ym).uniform(-0.03, 0.03)
                out.append((ym, hs8, c, kg, max(1, round(kg * uv * noise))))
    return out


def _render_rows(header: list[str], rows: list[list[str]]) -> bytes:
    return "".join(",".join('"' + v.replace('"', '""') + '"' for v in line) + ",\r\n"
                   for line in [header, *rows]).encode("gb18030")


def shape_files(months: dict[str, list], names) -> dict[str, bytes]:
    """{path under the landing dir: bytes} of the world, province, regime and imports downloads."""
    partners_zh, partners_en, hs_zh, hs_en = names
    world = world_magnets(months)
    provinces = _names_from_seed("gacc_provinces", "province_code")
    regimes = _names_from_seed("gacc_customs_regimes", "regime_code")
    files = {}
    files[f"exports/magnets_world_{SHAPES_SPAN}.csv"] = _render_rows(
        ["数据年月", "商品编码", "商品名称", "第一数量", "第一计量单位", "第二数量", "第二计量单位", "美元"],
        [[ym, h, hs_zh[h], f"{kg:,}", "千克", "0", "?", f"{usd:,}"] for (ym, h), (kg, usd) in sorted(world.items())])
    files[f"exports/magnets_by_province_{SHAPES_SPAN}.csv"] = _render_rows(
        ["数据年月", "商品编码", "商品名称", "注册地编码", "注册地名称", "第一数量", "第一计量单位", "美元"],
        [[ym, h, hs_zh[h], c, provinces[c][0], f"{kg:,}", "千克", f"{usd:,}"]
         for ym, h, c, kg, usd in split_world(world, PROVINCE_WEIGHTS, "prov")])
    files[f"exports/magnets_by_regime_{SHAPES_SPAN}.csv"] = _render_rows(
        ["Commodity code", "Commodity", "Date of data", "Customs Regime code", "Customs Regime", "US dollar", "Quantity", "Unit"],
        [[h, hs_en[h], ym, c, regimes[c][1], f"{usd:,}", f"{kg:,}", "Kilogram"]
         for ym, h, c, kg, usd in split_world(world, REGIME_WEIGHTS, "regime")])
    imp = import_rows()
    files[f"imports/rare_earths_by_partner_{SHAPES_SPAN}.csv"] = _render_rows(
        ["Date of data", "Commodity code", "Commodity", "Trading partner code", "Trading partner", "Quantity", "Unit", "US dollar"],
        [[ym, h, hs_en[h], c, partners_en[c], f"{kg:,}", "Kilogram", f"{usd:,}"] for ym, h, c, kg, usd in imp])
    return files


def write_shape_files(landing: Path, months: dict[str, list], names) -> list[Path]:
    written = []
    for rel, data in shape_files(months, names).items():
        path = landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not (path.exists() and path.read_bytes() == data):
            path.write_bytes(data)
        written.append(path)
    return written


def verify_shapes(landing: Path) -> list[str]:
    """Problems with the shape files: world totals equal to the partner sums of the monthly files,
    breakdowns adding up to them, imports matching their published world figures."""
    problems = []
    expected = shape_files(build(), load_names())
    for rel, data in expected.items():
        if not (landing / rel).exists() or (landing / rel).read_bytes() != data:
            problems.append(f"{rel}: missing or not as generated")
    world = world_magnets(build())
    if world[("202505", "85051110")][0] != 1_238_000 or world[("202506", "85051110")][0] != 3_188_000:
        problems.append("world totals of 85051110 do not give the headline (1,238 t May, 3,188 t June 2025)")
    for weights, key in ((PROVINCE_WEIGHTS, "prov"), (REGIME_WEIGHTS, "regime")):
        sums: dict = defaultdict(lambda: [0, 0])
        for ym, h, _c, kg, usd in split_world(world, weights, key):
            sums[(ym, h)][0] += kg
            sums[(ym, h)][1] += usd
        if {k: tuple(v) for k, v in sums.items()} != world:
            problems.append(f"{key} breakdown does not add up to the world totals")
    imports = defaultdict(int)
    for ym, h, _c, kg, _usd in import_rows():
        imports[(ym, h)] += kg
    for fr in csv.DictReader(open(SEEDS / "published_figures.csv", encoding="utf-8")):
        if fr["flow"] != "imports" or fr["reporter"] != "CHN" or fr["evidence"] != "quoted" or fr["partner"] != "WLD":
            continue
        span = [ym for ym in YM if fr["period_start"].replace("-", "") <= ym <= fr["period_end"].replace("-", "")]
        got = sum(imports[(ym, fr["hs_scope"])] for ym in span) / 1000
        if abs(got / float(fr["quantity_t"]) - 1) > 0.005:
            problems.append(f"imports {fr['hs_scope']} {fr['period_start']}..{fr['period_end']}: {got:.1f} t vs {fr['quantity_t']} t")
    return problems


# ==========================================================================
# Independent verification: re-read the files as bytes, decode GB18030, parse
# with the csv module, and check every constraint against the seeds.
# ==========================================================================
ZH_TO_FIELD = dict(zip(ZH_HEADER, FIELDS))
EN_TO_FIELD = {"Date of data": "ym", "Commodity code": "hs8", "Commodity": "commodity",
               "Trading partner code": "partner_code", "Trading partner": "partner",
               "Quantity": "qty1", "Unit": "unit1", "Supplementary Quantity": "qty2",
               "Supplimentary Quantity": "qty2", "Supplementary Unit": "unit2",
               "Supplimentary Unit": "unit2", "US dollar": "usd"}


def read_extract(path: Path) -> tuple[str, list[dict]]:
    raw = path.read_bytes()
    text = raw.decode("gb18030")
    lines = text.split("\r\n")
    assert lines[-1] == "", f"{path.name}: must end with CRLF"
    quoted = re.compile(r'^(?:"(?:[^"]|"")*",)+$')
    for i, line in enumerate(lines[:-1]):
        assert "\n" not in line and "\r" not in line, f"{path.name}:{i}: bare LF/CR"
        assert quoted.match(line), f"{path.name}:{i}: not all-quoted with trailing comma"
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0]
    assert header[-1] == "" and all(r[-1] == "" for r in rows)
    header = header[:-1]
    lang = "zh" if header[0] in ZH_TO_FIELD else "en"
    mapping = ZH_TO_FIELD if lang == "zh" else EN_TO_FIELD
    fields = [mapping[h] for h in header]
    assert sorted(fields) == sorted(FIELDS), header
    recs = [dict(zip(fields, r[:-1])) for r in rows[1:]]
    return lang, recs


def num(s: str) -> int:
    assert re.fullmatch(r"\d{1,3}(,\d{3})*", s), s
    return int(s.replace(",", ""))


def pct(cur: float, base: float) -> float:
    return 100 * (cur / base - 1)


def quote_tol(q: str) -> tuple[float, float]:
    """(strict tolerance, tolerance implied by the quote's own rounding)."""
    if "." in q:
        return 0.15, 0.15
    return 0.15, 5.0 if abs(float(q)) >= 100 else 0.5


def verify(out: Path, check_determinism: bool = True) -> bool:
    ok = True
    problems: list[str] = []
    notes: list[str] = []

    def fail(msg):
        nonlocal ok
        ok = False
        problems.append(msg)

    seeds_partners = list(csv.DictReader(open(SEEDS / "gacc_partners.csv", encoding="utf-8")))
    iso = {r["partner_code"]: r["partner_iso3"] for r in seeds_partners}
    is_eu = {r["partner_code"]: r["is_eu"] == "true" for r in seeds_partners}
    comm = {r["hs8"]: r for r in csv.DictReader(open(SEEDS / "gacc_commodities.csv", encoding="utf-8"))}
    raw_en = {r[0]: ",".join(r[1:-1]) for r in read_gacc("en-TradingPartner.csv")[1:]}
    zh_names = {r["partner_code"]: r["partner_name_zh"] for r in seeds_partners}
    figures = [r for r in csv.DictReader(open(SEEDS / "published_figures.csv", encoding="ascii"))
               if r["flow"] == "exports" and r["reporter"] == "CHN"]

    files = sorted(f for f in out.glob("gacc_exports_*.csv") if not f.stem.endswith("_revised"))
    if [f.name for f in files] != [f"gacc_exports_{ym}.csv" for ym in YM]:
        fail(f"expected 24 files 202401..202512, found {[f.name for f in files]}")
    data: dict[tuple[str, str, str], tuple[int, int]] = {}
    supp_spellings = set()
    nrows = 0
    for f in files:
        ym = f.name[13:19]
        lang, recs = read_extract(f)
        header = f.read_bytes().decode("gb18030").split("\r\n")[0]
        if lang != ("zh" if int(ym[4:]) % 2 == 0 else "en"):
            fail(f"{f.name}: header language {lang}")
        if lang == "en":
            supp_spellings.add("Supplimentary" in header)
            if header.startswith('"Date of data"'):
                fail(f"{f.name}: English column order equals Chinese order")
        for r in recs:
            nrows += 1
            key = (r["ym"], r["hs8"], r["partner_code"])
            if r["ym"] != ym:
                fail(f"{f.name}: date {r['ym']}")
            if key in data:
                fail(f"duplicate key {key}")
            if r["hs8"] not in comm or not re.fullmatch(r"\d{8}", r["hs8"]):
                fail(f"unknown hs8 {r['hs8']}")
            if r["partner_code"] not in iso:
                fail(f"unknown partner {r['partner_code']}")
            cname = comm[r["hs8"]]["name_zh" if lang == "zh" else "name_en"]
            pname = zh_names if lang == "zh" else raw_en
            if r["commodity"] != cname or r["partner"] != pname[r["partner_code"]]:
                fail(f"name mismatch {key}: {r['commodity']!r} / {r['partner']!r}")
            if r["unit1"] != ("千克" if lang == "zh" else "Kilogram") or r["unit2"] != "?" \
                    or r["qty2"] != "0":
                fail(f"unit fields {key}")
            kg, usd = num(r["qty1"]), num(r["usd"])
            if kg <= 0 or usd <= 0:
                fail(f"non-positive row {key}")
            data[key] = (kg, usd)
    if supp_spellings != {True, False}:
        fail("English files should alternate Supplimentary/Supplementary")

    # ---- 85051110 aggregates ------------------------------------------------
    def kg_of(ym: str, who: str) -> int:
        tot = 0
        for (y, h, p), (kg, _) in data.items():
            if y != ym or h != "85051110":
                continue
            if who == "WLD" or (who == "EU" and is_eu[p]) or iso[p] == who:
                tot += kg
        return tot

    def months_between(a: str, b: str) -> list[str]:
        a, b = a.replace("-", ""), b.replace("-", "")
        return [ym for ym in YM if a <= ym <= b]

    def shift(ym: str, months: int) -> str:
        y, m = int(ym[:4]), int(ym[4:])
        k = y * 12 + m - 1 + months
        return f"{k // 12}{k % 12 + 1:02d}"

    checked = 0
    for fr in figures:
        if fr["hs_scope"] != "85051110":
            notes.append(f"skipped {fr['period_start']}..{fr['period_end']} {fr['partner']} "
                         f"(scope {fr['hs_scope']})")
            continue
        who = fr["partner"]
        span = months_between(fr["period_start"], fr["period_end"])
        label = f"{who} {fr['period_start']}" + (
            f"..{fr['period_end']}" if len(span) > 1 else "")
        want = round(float(fr["quantity_t"]) * 1000)
        got = sum(kg_of(ym, who) for ym in span)
        checked += 1
        if len(span) == 1:
            if got != want:
                fail(f"{label}: {got} kg != {want} kg")
        elif abs(got / want - 1) > 0.005:
            fail(f"{label}: {got/1000:.1f} t vs {want/1000:.1f} t ({pct(got, want):+.2f}%)")
        elif got != want:
            notes.append(f"{label}: sum {got/1000:.1f} t vs published {want/1000:.1f} t "
                         f"({pct(got, want):+.2f}%, within 0.5%)")
        for col, lag in (("mom_pct", 1), ("yoy_pct", 12)):
            q = fr[col]
            if not q:
                continue
            if col == "mom_pct" and len(span) > 1:
                continue
            base_span = [shift(ym, -lag) for ym in span]
            if not set(base_span) <= set(YM):
                notes.append(f"{label} {col} {q}: base {base_span[0]} before the sample, n/a")
                continue
            base = sum(kg_of(ym, who) for ym in base_span)
            calc = round(pct(got, base), 1)
            strict, loose = quote_tol(q)
            d = abs(pct(got, base) - float(q))
            if d <= strict:
                continue
            if d <= loose:
                notes.append(f"{label} {col}: computed {calc:+.1f} vs quoted {q} "
                             f"(off {d:.2f} pp; quote rounded to whole %)")
            else:
                fail(f"{label} {col}: computed {calc:+.1f} vs quoted {q}")

    # EU / partner sanity: every 85051110 month has >= 30 partners
    for ym in YM:
        n = sum(1 for (y, h, _p) in data if y == ym and h == "85051110")
        if n < 30:
            fail(f"{ym}: only {n} partners for 85051110")

    # ---- unit-value robust outlier check ------------------------------------
    by_code_month: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    rows_uv: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (ym, h, p), (kg, usd) in data.items():
        k, u = by_code_month[h].get(ym, (0, 0))
        by_code_month[h][ym] = (k + kg, u + usd)
        rows_uv[h][ym].append(usd / kg)
    outliers = 0
    for h, series in by_code_month.items():
        uv = {ym: u / k for ym, (k, u) in series.items()}
        for i, ym in enumerate(YM):
            hist = [uv[y] for y in YM[max(0, i - 12):i] if y in uv]
            if len(hist) < 6 or ym not in uv:
                continue
            med = statistics.median(hist)
            mad = statistics.median(abs(x - med) for x in hist)
            if abs(uv[ym] - med) > 3 * mad:
                outliers += 1
                fail(f"unit value outlier {h} {ym}: {uv[ym]:.2f} vs median {med:.2f} "
                     f"(MAD {mad:.3f})")
            # row level: each partner row vs the same trailing median and MAD
            for x in rows_uv[h][ym]:
                if abs(x - med) > 3 * mad:
                    outliers += 1
                    fail(f"row unit value outlier {h} {ym}: {x:.2f} vs median {med:.2f} "
                         f"(MAD {mad:.3f})")
    uv_ranges = {h: (min(u / k for k, u in s.values()), max(u / k for k, u in s.values()))
                 for h, s in by_code_month.items()}

    # ---- determinism ---------------------------------------------------------
    if check_determinism:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            for f in files:
                if (Path(tmp) / f.name).read_bytes() != f.read_bytes():
                    fail(f"{f.name}: not byte-identical on regeneration")

    # ---- report ----------------------------------------------------------------
    print(f"files: {len(files)}, rows: {nrows}, published 85051110 figures checked: {checked}")
    per_code = defaultdict(int)
    for (_y, h, _p) in data:
        per_code[h] += 1
    for h in sorted(per_code):
        tot_t = sum(k for (y, hh, _p), (k, _u) in data.items() if hh == h) / 1000
        lo, hi = uv_ranges[h]
        print(f"  {h}: {per_code[h]:5d} rows, {tot_t:12,.1f} t over 24 months, "
              f"unit value {lo:8.2f}..{hi:8.2f} USD/kg")
    print("\n85051110 exports (tonnes)                 world                      USA")
    print(f"{'month':8s} {'world t':>9s} {'MoM %':>7s} {'YoY %':>7s} {'USD/kg':>7s}   "
          f"{'USA t':>8s} {'MoM %':>7s} {'YoY %':>7s}")
    for i, ym in enumerate(YM):
        w, u = kg_of(ym, "WLD"), kg_of(ym, "USA")
        usd = sum(v for (y, h, _p), (_k, v) in data.items() if y == ym and h == "85051110")
        cells = []
        for cur, who in ((w, "WLD"), (u, "USA")):
            mom = f"{pct(cur, kg_of(YM[i-1], who)):+7.1f}" if i >= 1 else f"{'':>7s}"
            yoy = f"{pct(cur, kg_of(YM[i-12], who)):+7.1f}" if i >= 12 else f"{'':>7s}"
            cells.append((cur / 1000, mom, yoy))
        (wt, wm, wy), (ut, um, uy) = cells
        print(f"{ym[:4]}-{ym[4:]}  {wt:9.1f} {wm} {wy} {usd / w:7.2f}   {ut:8.1f} {um} {uy}")
    for y in ("2024", "2025"):
        ms = [ym for ym in YM if ym.startswith(y)]
        h1 = ms[:6]
        print(f"{y} total: world {sum(kg_of(m, 'WLD') for m in ms)/1000:,.1f} t, "
              f"USA {sum(kg_of(m, 'USA') for m in ms)/1000:,.1f} t; H1: world "
              f"{sum(kg_of(m, 'WLD') for m in h1)/1000:,.1f} t, USA "
              f"{sum(kg_of(m, 'USA') for m in h1)/1000:,.1f} t, EU "
              f"{sum(kg_of(m, 'EU') for m in h1)/1000:,.1f} t")
    print()
    for n in notes:
        print("note:", n)
    for p in problems:
        print("FAIL:", p)
    print("VERIFY", "PASSED" if ok else "FAILED")
    return ok


# ==========================================================================
# A revised release: GACC republishes a month with corrected rows. The sample holds one, so the
# revision history (intermediate.int_customs_facts_history) and the documented as-of queries have
# something to show: the March 2024 file again, as a separate download, with the neodymium oxide
# (28469013) rows of its first two partners 10% higher (quantity and value). Synthetic, like the
# rest of 28469013; no 85051110 row and no headline figure changes.
# ==========================================================================
REVISED_YM, REVISED_HS8, REVISED_ROWS, REVISED_FACTOR = "202403", "28469013", 2, 1.1


def write_revised_sample(out: Path) -> Path:
    """Write gacc_exports_<REVISED_YM>_revised.csv from gacc_exports_<REVISED_YM>.csv in `out`."""
    text = (out / f"gacc_exports_{REVISED_YM}.csv").read_bytes().decode("gb18030")
    lines = text.split("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0]
    hs8_at = next(i for i, h in enumerate(header) if h in ("商品编码", "Commodity code"))
    qty_at = next(i for i, h in enumerate(header) if h in ("第一数量", "Quantity"))
    usd_at = next(i for i, h in enumerate(header) if h in ("美元", "US dollar"))
    revised = 0
    for i, row in enumerate(rows[1:], start=1):
        if row[hs8_at] == REVISED_HS8 and revised < REVISED_ROWS:
            for at in (qty_at, usd_at):
                row[at] = f"{round(int(row[at].replace(',', '')) * REVISED_FACTOR):,}"
            lines[i] = ",".join('"' + v.replace('"', '""') + '"' for v in row[:-1]) + ","
            revised += 1
    path = out / f"gacc_exports_{REVISED_YM}_revised.csv"
    data = "\r\n".join(lines).encode("gb18030")
    if not (path.exists() and path.read_bytes() == data):
        path.write_bytes(data)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Generate the bundled sample GACC extracts.")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--landing", type=Path, default=None,
                    help="landing dir for the world/province/regime/imports downloads (default: --out's parent "
                         "when --out is an exports folder)")
    ap.add_argument("--verify", action="store_true", help="generate, then verify")
    ap.add_argument("--verify-only", action="store_true", help="verify existing files")
    args = ap.parse_args(argv)
    landing = args.landing or (args.out.parent if args.out.name == "exports" else None)
    if not args.verify_only:
        written = generate(args.out, landing) + [write_revised_sample(args.out)]
        print(f"wrote {len(written)} files to {args.out}" + (f" and {landing}" if landing else ""))
    if args.verify or args.verify_only:
        ok = verify(args.out)
        if landing is not None:
            shape_problems = verify_shapes(landing)
            for problem in shape_problems:
                print("FAIL:", problem)
            print("VERIFY SHAPES", "FAILED" if shape_problems else "PASSED")
            ok = ok and not shape_problems
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

