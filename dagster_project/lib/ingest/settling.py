"""Files still being written wait for the next run: the settle interval, and changes during a run.

A download written straight to its final name (curl, wget, a copy from a share) looks like any
other file while it grows. A file modified within the last CUSTOMS_SETTLE_SECONDS is watched
until it has been left alone that long; if its size, times or inode move meanwhile, it is
deferred to the next run, never loaded part-way. Files modified earlier are not waited for,
so a build over files copied a while ago waits for nothing, and one started right after a copy
waits at most the interval, once (the deadlines are absolute, not per file).

The same stat is compared again after a file is read and before its load commits: a file
that changed during the run is deferred too. A writer that pauses for longer than the
interval and then carries on cannot be told from a finished download by its stat: the
interval should be longer than the pauses of the tools that write into the landing directory.
"""

from __future__ import annotations

import os
import time

from dagster_project.lib.ingest.landing_files import LandingFile
from dagster_project.lib.ingest.regular_files import stat_key

DEFAULT_SETTLE_SECONDS = 3.0


class Deferred(Exception):
    """The file is not settled: it waits for the next run (not a rejection; the message says why)."""


def settle_seconds() -> float:
    value = os.environ.get("CUSTOMS_SETTLE_SECONDS", "")
    try:
        return max(0.0, float(value)) if value.strip() else DEFAULT_SETTLE_SECONDS
    except ValueError:
        raise ValueError(f"CUSTOMS_SETTLE_SECONDS={value!r}: expected a number of seconds (e.g. 3)") from None


def _sizes(before: os.stat_result, after: os.stat_result) -> str:
    if before.st_ino != after.st_ino:
        return "replaced by another file"
    if before.st_size != after.st_size:
        return f"size {before.st_size:,} -> {after.st_size:,} bytes"
    return "modified"


def change_since_listed(lf: LandingFile) -> str | None:
    """How the file changed since the landing directory was listed, or None if it did not."""
    try:
        now = lf.path.stat()
    except OSError as exc:
        return f"it is gone or unreadable since the landing directory was listed ({exc.strerror or exc})"
    if lf.stat is None or stat_key(now) != stat_key(lf.stat):
        return _sizes(lf.stat, now) if lf.stat is not None else "it changed"
    return None


def check_unchanged(lf: LandingFile, when: str) -> None:
    """Raise Deferred if the file changed since it was listed (`when`: 'while it was read' ...)."""
    change = change_since_listed(lf)
    if change is not None:
        raise Deferred(f"changed {when} ({change}): deferred to the next run, which reads it whole")


class Settler:
    """Tells settled files from files still being written (see the module's docstring)."""

    def __init__(self, listed_at: float, seconds: float | None = None):
        self.seconds = settle_seconds() if seconds is None else seconds
        self.listed_at = listed_at
        self.waited = 0.0  # seconds slept, for the run's report

    def unsettled(self, lf: LandingFile) -> str | None:
        """None when the file has been left alone for the settle interval; else why it is deferred."""
        if self.seconds <= 0 or lf.stat is None:
            return None
        modified = lf.stat.st_mtime_ns / 1e9
        if self.listed_at - modified >= self.seconds:
            return None
        # A modification time ahead of the clock (another machine's, on a share) is watched for
        # the interval from the listing, no longer.
        deadline = min(modified, self.listed_at) + self.seconds
        pause = deadline - time.time()
        if pause > 0:
            time.sleep(pause)
            self.waited += pause
        change = change_since_listed(lf)
        if change is None:
            return None
        return (f"still being written: it changed within the {self.seconds:g} s settle interval ({change}); "
                "deferred to the next run (CUSTOMS_SETTLE_SECONDS sets the interval)")


class ContentChanged(Deferred):
    """What was read is not the content that was hashed: the file changed in between."""


def check_content(lf: LandingFile, hashed: str, read: str) -> None:
    """Raise ContentChanged unless the bytes read are the bytes hashed: a load records the
    SHA-256 of exactly the bytes it loaded."""
    if read != hashed:
        raise ContentChanged(
            f"changed between hashing and reading (SHA-256 {hashed[:12]}… when hashed, {read[:12]}… when read): "
            "deferred to the next run, which hashes and reads it again"
        )
