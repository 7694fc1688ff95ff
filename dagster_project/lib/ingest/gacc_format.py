"""What a GACC statistics-platform download looks like, as data.

Headers come in Chinese or English depending on the platform's language setting, in any
order, and with two English spellings of "Supplementary". Each header maps to one
canonical column; the value column also fixes the file's currency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# canonical column -> every header spelling the platform uses
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "period": ("数据年月", "Date of data"),
    "hs8": ("商品编码", "Commodity code"),
    "commodity_name": ("商品名称", "Commodity"),
    "partner_code": ("贸易伙伴编码", "Trading partner code"),
    "partner_name": ("贸易伙伴名称", "Trading partner"),
    "regime_code": ("贸易方式编码", "Customs Regime code"),
    "regime_name": ("贸易方式名称", "Customs Regime"),
    "province_code": ("注册地编码", "收发货人注册地编码", "Locations of importers and exporters code"),
    "province_name": ("注册地名称", "收发货人注册地名称", "Locations of importers and exporters"),
    "quantity": ("第一数量", "Quantity"),
    "unit": ("第一计量单位", "Unit"),
    "quantity2": ("第二数量", "Supplementary Quantity", "Supplimentary Quantity"),
    "unit2": ("第二计量单位", "Supplementary Unit", "Supplimentary Unit"),
    "value_usd": ("美元", "US dollar"),
    "value_cny": ("人民币", "Renminbi Yuan"),
}

# Columns a download may end with that carry nothing for us.
IGNORED_HEADERS = ("", "备注", "Remarks", "Remark", "Note")

REQUIRED = ("hs8", "quantity", "unit")
# The grouping fields the platform's query offers beside the commodity (it takes at most two of
# commodity, partner, regime and registration place): a download may hold any of them or none
# (a world total per code). Each is (code column, name column, name in raw.customs_loads.dimensions).
OPTIONAL_DIMENSIONS = (
    ("partner_code", "partner_name", "partner"),
    ("regime_code", "regime_name", "regime"),
    ("province_code", "province_name", "province"),
)

_LOOKUP = {alias.casefold(): canonical for canonical, aliases in HEADER_ALIASES.items() for alias in aliases}

CHINESE_HEADERS = {alias for aliases in HEADER_ALIASES.values() for alias in aliases if not alias.isascii()}

PLATFORM_ROW_CAP = 10_000

# Tokens the platform writes for "no value".
NULL_TOKENS = ("", "?", "？", "-", "—", "--", "－")

# A file without a 数据年月 column is named by its period: YYYYMM (one month) or YYYYMM-YYYYMM
# (a cumulative range). Six-digit runs that are not months (an HS6 code such as 850511) are skipped.
MONTH_IN_NAME = re.compile(r"(?<!\d)\d{6}(?!\d)")
RANGE_SEPARATOR = re.compile(r"\s*[-_~至]\s*")

# A 数据年月 / Date of data value (RE2, for DuckDB): a month (202506, 2025-06, 2025年6月) or a
# range for a cumulative figure (202501-202506, 202501-06, 2025年1-2月: January and February
# published together). Groups: start year, start month, end year (optional), end month.
PERIOD_VALUE_RE = (
    r"^([0-9]{4})[-/.年]?([0-9]{1,2})月?"
    r"(?:\s*[-~～至到]\s*(?:([0-9]{4})[-/.年]?)?([0-9]{1,2})月?)?$"
)


class HeaderError(ValueError):
    pass


@dataclass(frozen=True)
class Header:
    columns: tuple[str, ...]  # canonical name per position ("_ignored_N" for dropped columns)
    language: str  # "zh" or "en"
    currency: str  # "USD" or "CNY"

    def has(self, column: str) -> bool:
        return column in self.columns

    @property
    def dimensions(self) -> list[str]:
        """The file's grouping fields, as raw.customs_loads.dimensions records them ('hs8' alone: world totals)."""
        return ["hs8"] + [dim for code, _, dim in OPTIONAL_DIMENSIONS if self.has(code)]


def _normalise(name: str) -> str:
    """Header text as compared: no BOM, no outer spaces, inner runs of spaces (incl. no-break) as one."""
    return re.sub(r"\s+", " ", name.replace("\ufeff", "").replace("\u3000", " ")).strip()


def recognised_headers(raw_names: list[str]) -> list[str]:
    """The canonical columns among a header row's names (to tell a garbled header from a wrong one)."""
    return [_LOOKUP[n.casefold()] for n in map(_normalise, raw_names) if n.casefold() in _LOOKUP]


def map_header(raw_names: list[str]) -> Header:
    """Map the header row of a download to canonical columns, or say exactly what is wrong."""
    names = [_normalise(n) for n in raw_names]
    columns: list[str] = []
    unknown: list[str] = []
    for position, name in enumerate(names, start=1):
        canonical = _LOOKUP.get(name.casefold())
        if canonical is None:
            if name in IGNORED_HEADERS:
                columns.append(f"_ignored_{position}")
                continue
            unknown.append(f"'{name}' (column {position})")
            columns.append(f"_unknown_{position}")
            continue
        if canonical in columns:
            raise HeaderError(f"header: column '{name}' (column {position}) repeats {canonical}")
        columns.append(canonical)
    if unknown:
        raise HeaderError(
            "header: unrecognised column(s) " + ", ".join(unknown)
            + "; expected GACC headers in Chinese (数据年月, 商品编码, 贸易伙伴编码, 第一数量, 第一计量单位, 美元 ...)"
            " or English (Date of data, Commodity code, Trading partner code, Quantity, Unit, US dollar ...)"
        )
    if "hs8" not in columns:
        grouped_by = [HEADER_ALIASES[code][0] for code, _, _ in OPTIONAL_DIMENSIONS if code in columns]
        raise HeaderError(
            "header: no commodity code column ('商品编码' / 'Commodity code')"
            + (f": a total of all goods grouped by {' x '.join(grouped_by)} is not loaded" if grouped_by else "")
            + "; download the query again with 商品编码 / Commodity code as a grouping field (alone for world "
            "totals per code, or with one of trading partner, customs regime or registration place)"
        )
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        spellings = "; ".join(" / ".join(f"'{a}'" for a in HEADER_ALIASES[c]) for c in missing)
        raise HeaderError(f"header: required column(s) missing: {spellings}")
    has_usd, has_cny = "value_usd" in columns, "value_cny" in columns
    if has_usd == has_cny:
        raise HeaderError(
            "header: a file needs exactly one value column, 美元 / US dollar or 人民币 / Renminbi Yuan"
            + (" (found both: download the currencies as separate files)" if has_usd else " (found none)")
        )
    for code, name, _ in OPTIONAL_DIMENSIONS:
        if (code in columns) != (name in columns) and code not in columns:
            raise HeaderError(f"header: '{HEADER_ALIASES[name][0]}' present without its code column '{HEADER_ALIASES[code][0]}'")
    language = "zh" if any(n in CHINESE_HEADERS for n in names) else "en"
    return Header(columns=tuple(columns), language=language, currency="USD" if has_usd else "CNY")
