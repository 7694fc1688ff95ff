"""Files the ingest refuses without reading a byte of them (not even to hash them)."""

from __future__ import annotations

import os
from pathlib import Path

from dagster_project.lib.ingest.landing_files import LandingFile

# A GACC download stops at 10,000 rows (about 2 MB); anything this large is not one.
MAX_FILE_BYTES = int(os.environ.get("CUSTOMS_MAX_FILE_BYTES", str(512 * 1024 * 1024)))


def refuse_before_reading(lf: LandingFile, landing_dir: Path) -> str | None:
    """The reason to refuse the file unread, or None to read it."""
    if lf.path.is_symlink():
        target = lf.path.resolve()
        root = landing_dir.resolve()
        if target != root and root not in target.parents:
            return "symbolic link pointing outside the landing directory: not read"
    try:
        size = lf.path.stat().st_size
    except OSError as exc:
        return f"cannot read the file: {exc.strerror}"
    if size > MAX_FILE_BYTES:
        return (f"file of {size / 1e6:,.0f} MB is larger than {MAX_FILE_BYTES / 1e6:,.0f} MB: a GACC download stops at "
                "10,000 rows (about 2 MB); split the data into downloads (or raise CUSTOMS_MAX_FILE_BYTES)")
    return None
