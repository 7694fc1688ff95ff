"""What a UN Comtrade download looks like: the Comtrade+ portal's and API's CSV, and which of its
rows the mirror of China's exports keeps.

The portal and the API (data/v1/get) write 47 columns; a download may hold a subset (the API's
`fields`, a spreadsheet that dropped some). A file needs the columns the mirror reads
(REQUIRED); the others are read when present. Names match case-insensitively, a byte-order mark
before the first one is ignored, and unknown columns are ignored.

Kept: monthly (freqCode M) imports (flowCode M) from China (partnerCode 156) of an HS6 code,
the totals row of each (partner2Code 0 = any second partner, customsCode C00 = all customs
procedures, motCode 0 = all transport modes; a file without those columns has only totals).
Everything else is ignored and counted in the load's record, by reason.
"""

from __future__ import annotations

FOLDER = "mirror/comtrade"

# Comtrade+ column names, in the portal's order.
COLUMNS = (
    "typeCode", "freqCode", "refPeriodId", "refYear", "refMonth", "period", "reporterCode", "reporterISO",
    "reporterDesc", "flowCode", "flowDesc", "partnerCode", "partnerISO", "partnerDesc", "partner2Code",
    "partner2ISO", "partner2Desc", "classificationCode", "classificationSearchCode", "isOriginalClassification",
    "cmdCode", "cmdDesc", "aggrLevel", "isLeaf", "customsCode", "customsDesc", "mosCode", "motCode", "motDesc",
    "qtyUnitCode", "qtyUnitAbbr", "qty", "isQtyEstimated", "altQtyUnitCode", "altQtyUnitAbbr", "altQty",
    "isAltQtyEstimated", "netWgt", "isNetWgtEstimated", "grossWgt", "isGrossWgtEstimated", "cifvalue", "fobvalue",
    "primaryValue", "legacyEstimationFlag", "isReported", "isAggregate",
)
REQUIRED = (
    "freqCode", "period", "reporterCode", "reporterISO", "flowCode", "partnerCode", "cmdCode",
    "qtyUnitCode", "qty", "primaryValue",
)
# Read when present (NULL otherwise).
OPTIONAL = (
    "reporterDesc", "partnerISO", "partner2Code", "customsCode", "motCode", "cmdDesc", "qtyUnitAbbr",
    "netWgt", "cifvalue", "fobvalue", "isQtyEstimated", "isReported",
)
NUMBERS = ("qty", "netWgt", "cifvalue", "fobvalue", "primaryValue")

MONTHLY, IMPORTS, CHINA, WORLD = "M", "M", "156", "0"
KG = 8
# UN Comtrade quantity units (qtyUnitCode): -1 = not available, 1-13 the WCO units
# (UN Comtrade reference tables: "WCO/UN Comtrade Supplementary Quantity Units").
QTY_UNITS = {
    -1: "N/A", 1: "no quantity", 2: "m2", 3: "1000 kWh", 4: "m", 5: "u", 6: "2u", 7: "l", 8: "kg",
    9: "1000u", 10: "U (jeu/pack)", 11: "12u", 12: "m3", 13: "carat",
}


class HeaderError(ValueError):
    pass


def is_comtrade(rel: str) -> bool:
    """A landing file in the Comtrade folder (relative posix path)."""
    return rel.startswith(FOLDER + "/")


def map_header(raw_header: list[str]) -> dict[str, int]:
    """Each known column's position in the file (0-based); HeaderError names what is missing."""
    wanted = {name.lower(): name for name in COLUMNS}
    positions: dict[str, int] = {}
    for i, raw in enumerate(raw_header):
        name = wanted.get(raw.strip().lstrip("\ufeff").strip().lower())
        if name is None:
            continue
        if name in positions:
            raise HeaderError(f"line 1: column '{name}' appears twice (columns {positions[name] + 1} and {i + 1})")
        positions[name] = i
    missing = [c for c in REQUIRED if c not in positions]
    if missing:
        found = len(positions)
        hint = ("no Comtrade column was recognised: is this a UN Comtrade download (comtradeplus.un.org, "
                "CSV)? GACC files go under exports/ or imports/") if not found else (
                "download the data again with every column (the portal's default), or add these to the API's fields")
        raise HeaderError(f"line 1: required column(s) {', '.join(repr(m) for m in missing)} missing; {hint}")
    return positions
