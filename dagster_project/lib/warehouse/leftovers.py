"""What a killed build or a failed copy leaves beside the warehouse, and what the next build makes of it."""

from __future__ import annotations

import time
from pathlib import Path

from dagster_project.lib.settings import Settings


def clean_leftovers(settings: Settings) -> list[Path]:
    """What a killed build leaves besides the working copy is never valid: remove it; the partial copies removed.

    Partial copies (`*.partial`, from publish or from creating the working copy) and their
    WALs, and staged extracts. Builds run one at a time (the `duckdb_warehouse` pool), so
    none of these belongs to a live build when the next one starts.
    """
    name = settings.warehouse_path.name
    removed = []
    for pattern in (f"{name}*.partial", f"{name}*.partial.wal"):
        for leftover in settings.data_dir.glob(pattern):
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    if settings.staging_dir.is_dir():
        for staged in settings.staging_dir.iterdir():
            if staged.is_file():
                staged.unlink(missing_ok=True)
    return removed


def copy_failure_note(settings: Settings) -> Path:
    """Left by a background copy that failed, for the next build to say why (the copy has no terminal)."""
    return settings.working_path.with_name(settings.working_path.name + ".copy-failed")


def record_copy_failure(settings: Settings, error: BaseException) -> None:
    try:
        copy_failure_note(settings).write_text(
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {type(error).__name__}: {error}\n", encoding="utf-8")
    except OSError:
        pass  # a disk too full for a line: the next build copies again all the same


def last_copy_failure(settings: Settings, partials: list[Path]) -> str | None:
    """Why the last copy of the served file to the working copy did not finish (removing the note); None when it did.

    `partials`: what `clean_leftovers` removed; a partial copy of the working copy means a copy
    that was killed (a failed one removes its own, and leaves the note).
    """
    note = copy_failure_note(settings)
    if note.exists():
        try:
            text = note.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = "unknown error"
        note.unlink(missing_ok=True)
        return f"it failed at {text}"
    prefix = settings.working_path.name + "."
    copies = [p for p in partials if p.name.startswith(prefix) and p.name.endswith(".partial")]
    if copies:
        return f"it stopped half-way (killed, or the machine went down), leaving {copies[0].name}, now removed"
    return None
