"""The landing directory as the ingest sees it: its files in release order, where each belongs,
the period a file name states, and the id a load of a file gets."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from dagster_project.lib.ingest import gacc_format as fmt

FLOWS = ("exports", "imports")
TEXT_SUFFIXES = (".csv", ".txt")


@dataclass(frozen=True)
class LandingFile:
    path: Path
    rel: str  # posix path relative to the landing directory


def discover(landing_dir: Path) -> list[LandingFile]:
    """Every candidate file under the landing directory, oldest first (later files revise earlier ones)."""
    if not landing_dir.is_dir():
        return []
    found = []
    for root, dirs, files in os.walk(landing_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith("."):
                continue
            path = Path(root) / name
            found.append(LandingFile(path, path.relative_to(landing_dir).as_posix()))
    return sorted(found, key=lambda f: (_mtime(f.path), f.rel))


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def in_flow_folder(rel: str) -> bool:
    """GACC files do not say which flow they hold: the folder they sit in does."""
    parts = rel.split("/")
    return len(parts) >= 2 and parts[0] in FLOWS


def load_id_for(rel: str, sha: str, generation: int = 0) -> str:
    """A load's id: its file and content, and how many times that same pair was loaded before
    (a file changed back to an earlier version is loaded again, as the latest release)."""
    key = f"{rel}\x00{sha}" + (f"\x00{generation}" if generation else "")
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def period_from_name(name: str) -> tuple[dt.date, dt.date] | None:
    """The first month (YYYYMM) in a file name, or the range YYYYMM-YYYYMM it starts; None if there is none."""
    months = [(m.start(), m.end(), _yyyymm(m.group())) for m in fmt.MONTH_IN_NAME.finditer(name)]
    months = [m for m in months if m[2] is not None]
    if not months:
        return None
    _, end_of_first, start = months[0]
    if len(months) > 1 and fmt.RANGE_SEPARATOR.fullmatch(name[end_of_first:months[1][0]]):
        end = months[1][2]
        return (start, end) if end >= start else None  # an inverted range is no period
    return start, start


def _yyyymm(text: str) -> dt.date | None:
    year, month = int(text[:4]), int(text[4:])
    if not (1990 <= year <= 2100 and 1 <= month <= 12):
        return None
    return dt.date(year, month, 1)
