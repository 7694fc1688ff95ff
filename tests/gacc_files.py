"""Write extracts in the GACC download format (and its variants) for tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable, Mapping

from dagster_project.lib.settings import PROJECT_ROOT

SAMPLE_DIR = PROJECT_ROOT / "data" / "landing" / "exports"
SAMPLE_LANDING = SAMPLE_DIR.parent

ZH = {
    "period": "数据年月", "hs8": "商品编码", "commodity_name": "商品名称", "partner_code": "贸易伙伴编码",
    "partner_name": "贸易伙伴名称", "regime_code": "贸易方式编码", "regime_name": "贸易方式名称",
    "province_code": "注册地编码", "province_name": "注册地名称", "quantity": "第一数量", "unit": "第一计量单位",
    "quantity2": "第二数量", "unit2": "第二计量单位", "USD": "美元", "CNY": "人民币",
    "remark": "备注", "blank": "",
}
EN = {
    "period": "Date of data", "hs8": "Commodity code", "commodity_name": "Commodity",
    "partner_code": "Trading partner code", "partner_name": "Trading partner", "regime_code": "Customs Regime code",
    "regime_name": "Customs Regime", "province_code": "Locations of importers and exporters code",
    "province_name": "Locations of importers and exporters", "quantity": "Quantity", "unit": "Unit",
    "quantity2": "Supplementary Quantity", "unit2": "Supplementary Unit", "USD": "US dollar", "CNY": "Renminbi Yuan",
    "remark": "Remarks", "blank": "",
}
DEFAULT_ORDER = ("period", "hs8", "commodity_name", "partner_code", "partner_name", "quantity", "unit", "quantity2", "unit2", "value")


def thousands(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,}" if isinstance(value, int) else f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)


def render_extract(
    rows: Iterable[Mapping],
    *,
    lang: str = "zh",
    currency: str = "USD",
    encoding: str = "gb18030",
    order: Iterable[str] = DEFAULT_ORDER,
    supplementary: str = "Supplementary",
    supplementary_unit: str = "Supplementary",
    trailing_comma: bool = True,
    quote_all: bool = True,
    header_override: Mapping[str, str] | None = None,
    line_end: str = "\r\n",
    final_line_end: bool = True,
) -> bytes:
    """The bytes of an extract. Rows are dicts keyed by canonical column ('value' is the currency column).

    `encoding` is any Python codec: "gb18030", "gbk", "utf-8", "utf-8-sig" (UTF-8 with BOM), "big5" ...
    """
    names = dict(ZH if lang == "zh" else EN)
    if lang == "en":
        names["quantity2"] = f"{supplementary} Quantity"
        names["unit2"] = f"{supplementary_unit} Unit"
    names.update(header_override or {})
    order = list(order)

    def cell(text: str) -> str:
        return '"' + text.replace('"', '""') + '"' if quote_all else text

    def line(cells: list[str]) -> str:
        return ",".join(cell(c) for c in cells) + ("," if trailing_comma else "") + line_end

    header = [names[currency] if c == "value" else names[c] for c in order]
    body = [line(header)]
    for row in rows:
        body.append(line([thousands(row.get(c, "")) for c in order]))
    text = "".join(body)
    if not final_line_end:
        text = text[: -len(line_end)]
    return text.encode(encoding)


def write_extract(path: Path, rows: Iterable[Mapping], *, mtime: float | None = None, **options) -> Path:
    """Write an extract (see render_extract for the options). `mtime` fixes the file's modification
    time, which orders loads: a later file revises an earlier one."""
    return write_bytes(path, render_extract(rows, **options), mtime=mtime)


def write_bytes(path: Path, data: bytes, *, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def magnet_row(period: str, partner_code: str, kg, usd, hs8: str = "85051110", unit: str = "千克", **extra) -> dict:
    row = {"period": period, "hs8": hs8, "commodity_name": "稀土永磁铁", "partner_code": partner_code,
           "partner_name": "", "quantity": kg, "unit": unit, "quantity2": 0, "unit2": "?", "value": usd}
    row.update(extra)
    return row


def copy_sample(landing: Path, months: Iterable[str] | None = None) -> list[Path]:
    """Copy the bundled sample extracts (optionally only some YYYYMM months) into a landing dir."""
    target = landing / "exports"
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for src in sorted(SAMPLE_DIR.glob("gacc_exports_*.csv")):
        if months is not None and src.stem.rsplit("_", 1)[-1] not in set(months):
            continue
        copied.append(Path(shutil.copy2(src, target / src.name)))
    return copied


def copy_sample_shapes(landing: Path) -> list[Path]:
    """Copy the bundled sample's other downloads (world totals, province and regime breakdowns
    under exports/, the rare-earth imports under imports/) into a landing dir."""
    copied = []
    for src in sorted(SAMPLE_LANDING.glob("*/*.csv")):
        if src.parent.name in ("exports", "imports") and not src.name.startswith("gacc_exports_"):
            target = landing / src.parent.name
            target.mkdir(parents=True, exist_ok=True)
            copied.append(Path(shutil.copy2(src, target / src.name)))
    return copied


def copy_sample_mirror(landing: Path) -> list[Path]:
    """Copy the bundled sample's UN Comtrade files (mirror/comtrade/) into a landing dir."""
    source = SAMPLE_LANDING / "mirror" / "comtrade"
    target = landing / "mirror" / "comtrade"
    target.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(src, target / src.name)) for src in sorted(source.glob("*.csv"))]
