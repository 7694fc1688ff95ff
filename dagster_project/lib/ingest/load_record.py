"""What a load says about its file, worded the same by both load paths: its result, its
warnings, its unit conversions, and the exception a file's rejection travels in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from dagster_project.lib.ingest import gacc_format as fmt


class Rejected(Exception):
    """The file cannot be loaded; the message is what the user reads."""


@dataclass
class LoadResult:
    file_path: str
    load_id: str
    row_count: int
    warnings: list[str] = field(default_factory=list)
    period_source: str | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None


def load_warnings(row_count: int, empty_rows: int, period_warning: str | None,
                  unknown_partners: int, unknown_codes: int) -> list[str]:
    """What a loaded file's record says about it (both load paths word it the same)."""
    warnings = []
    if row_count == fmt.PLATFORM_ROW_CAP:
        warnings.append(
            f"exactly {fmt.PLATFORM_ROW_CAP:,} data rows: the GACC platform stops downloads at this limit, "
            "so this download was probably truncated; split the query (by month, partner or chapter) and download again"
        )
    if empty_rows:
        warnings.append(f"{empty_rows} empty row(s) (every field blank) ignored")
    if period_warning:
        warnings.append(period_warning)
    if unknown_partners:
        warnings.append(f"{unknown_partners} row(s) with partner codes not in the GACC partner list")
    if unknown_codes:
        warnings.append(f"{unknown_codes} row(s) with commodity codes not in the GACC commodity list "
                        "(their unit is taken as written)")
    return warnings


def period_name_warning(outside: int, period_header: str, in_name: tuple[dt.date, dt.date]) -> str:
    return (f"{outside} row(s) with a {period_header} outside the period in the file name "
            f"({in_name[0]:%Y%m}" + (f"-{in_name[1]:%Y%m}" if in_name[1] != in_name[0] else "") + "); the column is used")


def unit_conversions_text(conversions: list[tuple]) -> str | None:
    """(file unit, declared unit, factor, rows) in sorted order -> the load record's unit_conversions."""
    if not conversions:
        return None
    return "; ".join(f"{n} row(s) converted {a} -> {b} (x{f.normalize():f})" for a, b, f, n in conversions)
