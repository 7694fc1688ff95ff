"""The landing directory as the ingest sees it: its files in release order, where each belongs,
the period a file name states, and the id a load of a file gets."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.lib.ingest import gacc_format as fmt
from dagster_project.lib.ingest.temporary_names import finished_name, is_temporary

FLOWS = ("exports", "imports")
TEXT_SUFFIXES = (".csv", ".txt")


@dataclass(frozen=True)
class LandingFile:
    path: Path
    rel: str  # posix path relative to the landing directory
    # its stat when the directory was listed (links followed): what a change is measured against
    stat: os.stat_result | None = None
    error: OSError | None = None  # why there is no stat


@dataclass
class LandingScan:
    """What a listing of the landing directory found."""

    files: list[LandingFile] = field(default_factory=list)  # oldest first
    temporary: list[str] = field(default_factory=list)  # downloads still being written under a temporary name
    unfinished: dict[str, str] = field(default_factory=dict)  # file -> the temporary file beside it
    unreadable_dirs: list[tuple[str, OSError]] = field(default_factory=list)
    listed_at: float = 0.0  # time.time() when the listing ended


def scan(landing_dir: Path) -> LandingScan:
    """Every entry under the landing directory, with its stat, without opening any file.

    Files whose name starts with a dot are hidden and skipped, as are the folders (symbolic links
    to folders are not followed). A folder that cannot be listed is reported, not skipped
    silently: the files in it would be missing from the warehouse without a word.
    """
    found = LandingScan()
    if not landing_dir.is_dir():
        found.listed_at = time.time()
        return found

    def unreadable(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else landing_dir
        found.unreadable_dirs.append((_rel(where, landing_dir), exc))

    for root, dirs, files in os.walk(landing_dir, onerror=unreadable):
        here = Path(root)
        for name in [d for d in dirs if is_temporary(d) and not d.startswith(".")]:
            found.temporary.append(_rel(here / name, landing_dir))
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not is_temporary(d))
        names = set(files)
        for name in files:
            if name.startswith("."):
                continue
            path = here / name
            if is_temporary(name):
                found.temporary.append(_rel(path, landing_dir))
                target = finished_name(name)
                if target in names:
                    found.unfinished[_rel(here / target, landing_dir)] = _rel(path, landing_dir)
                continue
            try:
                st, error = path.stat(), None
            except OSError as exc:
                st, error = None, exc
            found.files.append(LandingFile(path, _rel(path, landing_dir), st, error))
    found.files.sort(key=lambda f: (_mtime(f), f.rel))
    found.temporary.sort()
    found.listed_at = time.time()
    return found


def discover(landing_dir: Path) -> list[LandingFile]:
    """Every candidate file under the landing directory, oldest first (later files revise earlier ones)."""
    return scan(landing_dir).files


def _rel(path: Path, landing_dir: Path) -> str:
    return path.relative_to(landing_dir).as_posix() if path != landing_dir else "."


def _mtime(f: LandingFile) -> float:
    if f.stat is not None:
        return f.stat.st_mtime
    try:
        return f.path.lstat().st_mtime
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
