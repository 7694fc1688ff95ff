"""Generate the sample's UN Comtrade files: what six partners report importing from China (HS 850511).

    .venv/bin/python data/generate_mirror_sample.py [--landing data/landing]

Writes mirror/comtrade/comtrade_M_<ISO3>_<year>_850511.csv under the landing directory, one per
partner and year (2024, 2025), in the Comtrade+ CSV layout (47 columns, UTF-8 with a byte-order
mark, as the portal writes it). Run after data/generate_sample.py: the partner figures are
derived from the China-side sample in exports/ (HS8 85051110 + 85051190 = HS6 850511).

Every figure here is synthetic (dbt/seeds/published_figures.csv has the partner-side figures
that were published, and says why none of them is used as a month's value):
- quantity: a partner's month receives 30% of what China shipped that month and 70% of what it
  shipped the month before (a few weeks at sea), with +-4% noise;
- value: CIF, 5-10% over China's FOB value (freight and insurance), with the same lag;
- Viet Nam reports its first quarter of 2024 in items (qtyUnitCode 5), not kg: the mirror leaves
  those months out and says why;
- each file also holds rows the mirror ignores (and counts): the partner's imports from the World
  and its exports to China.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from dagster_project.lib.ingest.comtrade_format import COLUMNS, FOLDER  # noqa: E402

HS6 = "850511"
HS6_DESC = "Magnets; permanent magnets and articles intended to become permanent magnets after magnetisation, of metal"
# ISO3 -> (Comtrade reporter code, name, GACC partner code in the China-side sample)
PARTNERS = {
    "USA": ("842", "USA", "502"),
    "DEU": ("276", "Germany", "304"),
    "JPN": ("392", "Japan", "116"),
    "KOR": ("410", "Rep. of Korea", "133"),
    "VNM": ("704", "Viet Nam", "141"),
    "IND": ("699", "India", "111"),
}
YEARS = (2024, 2025)
SHARE_SAME_MONTH = 0.3  # the rest arrives the month after
# the sample's GACC headers, Chinese or English (lib/ingest/gacc_format.py knows them all)
HEADER_ALIASES = {"商品编码": "hs8", "Commodity code": "hs8", "数据年月": "month", "Date of data": "month",
                  "贸易伙伴编码": "partner", "Trading partner code": "partner", "第一数量": "kg", "Quantity": "kg",
                  "美元": "usd", "US dollar": "usd"}
ITEMS_MONTHS = {("VNM", "202401"), ("VNM", "202402"), ("VNM", "202403")}


def china_side(landing: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """(GACC partner code, YYYYMM) -> (kg, USD) of HS 850511 exports, from the sample's GACC files."""
    out: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    # the monthly files only: gacc_exports_YYYYMM_revised.csv republishes a month already counted
    for path in sorted((landing / "exports").glob("gacc_exports_[0-9][0-9][0-9][0-9][0-9][0-9].csv")):
        with path.open(encoding="gb18030", newline="") as handle:
            for raw in csv.DictReader(handle):
                row = {HEADER_ALIASES.get(k, k): v for k, v in raw.items()}
                if row["hs8"].startswith(HS6):  # every HS 850511 row of the sample is in kg
                    figures = out[(row["partner"], row["month"])]
                    figures[0] += float(row["kg"].replace(",", ""))
                    figures[1] += float(row["usd"].replace(",", ""))
    return {k: (v[0], v[1]) for k, v in out.items()}


def previous(ym: str) -> str:
    y, m = int(ym[:4]), int(ym[4:])
    return f"{y - 1}12" if m == 1 else f"{y}{m - 1:02d}"


def row(iso: str, ym: str, flow: str, partner: tuple[str, str, str], qty_unit: int, qty: float,
        kg: float, cif: float | None, primary: float) -> dict[str, str]:
    code, name, _ = PARTNERS[iso]
    unit_abbr = {8: "kg", 5: "u"}[qty_unit]
    return {
        "typeCode": "C", "freqCode": "M", "refPeriodId": f"{ym}01", "refYear": ym[:4], "refMonth": str(int(ym[4:])),
        "period": ym, "reporterCode": code, "reporterISO": iso, "reporterDesc": name,
        "flowCode": flow, "flowDesc": {"M": "Import", "X": "Export"}[flow],
        "partnerCode": partner[0], "partnerISO": partner[1], "partnerDesc": partner[2],
        "partner2Code": "0", "partner2ISO": "W00", "partner2Desc": "World",
        "classificationCode": "H6", "classificationSearchCode": "HS", "isOriginalClassification": "true",
        "cmdCode": HS6, "cmdDesc": HS6_DESC, "aggrLevel": "6", "isLeaf": "true",
        "customsCode": "C00", "customsDesc": "TOTAL CPC", "mosCode": "0", "motCode": "0", "motDesc": "TOTAL MOT",
        "qtyUnitCode": str(qty_unit), "qtyUnitAbbr": unit_abbr, "qty": f"{qty:.0f}", "isQtyEstimated": "false",
        "altQtyUnitCode": "-1", "altQtyUnitAbbr": "N/A", "altQty": "0", "isAltQtyEstimated": "false",
        "netWgt": f"{kg:.0f}", "isNetWgtEstimated": "false", "grossWgt": "0", "isGrossWgtEstimated": "false",
        "cifvalue": "" if cif is None else f"{cif:.0f}", "fobvalue": "", "primaryValue": f"{primary:.0f}",
        "legacyEstimationFlag": "0", "isReported": "true", "isAggregate": "true",
    }


def partner_rows(iso: str, year: int, china: dict) -> list[dict[str, str]]:
    gacc = PARTNERS[iso][2]
    rng = random.Random(f"mirror-{iso}-{year}")
    rows = []
    for month in range(1, 13):
        ym = f"{year}{month:02d}"
        now = china.get((gacc, ym), (0.0, 0.0))
        before = china.get((gacc, previous(ym)), now)  # January 2024: no December 2023 in the sample
        kg = (SHARE_SAME_MONTH * now[0] + (1 - SHARE_SAME_MONTH) * before[0]) * rng.uniform(0.96, 1.04)
        fob = SHARE_SAME_MONTH * now[1] + (1 - SHARE_SAME_MONTH) * before[1]
        cif = fob * rng.uniform(1.05, 1.10)
        if (iso, ym) in ITEMS_MONTHS:
            rows.append(row(iso, ym, "M", ("156", "CHN", "China"), 5, kg * 25, kg, cif, cif))
        else:
            rows.append(row(iso, ym, "M", ("156", "CHN", "China"), 8, kg, kg, cif, cif))
        # ignored by the mirror (and counted): imports from the World, exports to China
        rows.append(row(iso, ym, "M", ("0", "W00", "World"), 8, kg * 1.25, kg * 1.25, cif * 1.3, cif * 1.3))
        rows.append(row(iso, ym, "X", ("156", "CHN", "China"), 8, kg * 0.02, kg * 0.02, None, fob * 0.03))
    return rows


def render(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def generate(landing: Path) -> list[Path]:
    china = china_side(landing)
    if not china:
        raise SystemExit(f"no HS {HS6} exports in {landing / 'exports'}: run data/generate_sample.py first")
    out_dir = landing / FOLDER
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for iso in PARTNERS:
        for year in YEARS:
            path = out_dir / f"comtrade_M_{iso}_{year}_{HS6}.csv"
            content = render(partner_rows(iso, year, china))
            if not path.exists() or path.read_bytes() != content:  # unchanged files keep their mtime
                path.write_bytes(content)
            written.append(path)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--landing", type=Path, default=ROOT / "landing")
    args = ap.parse_args(argv)
    paths = generate(args.landing)
    print(f"wrote {len(paths)} Comtrade files under {args.landing / FOLDER}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
