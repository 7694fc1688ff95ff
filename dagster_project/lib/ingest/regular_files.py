"""What the ingest may open: regular files only, told apart by their stat, never by opening them.

Opening a FIFO blocks until a writer comes (a build that hangs for ever), reading a character
device such as /dev/zero never ends, and opening some devices does something (a tape rewinds).
So the kind of a landing entry is read from its stat first, and a file is opened with
O_NONBLOCK and checked again on the open descriptor: an entry swapped for a FIFO between the
stat and the open is then refused too, instead of hanging the build.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(OSError):
    """The path is not a regular file: the ingest does not read it."""


def irregular_kind(st: os.stat_result) -> str | None:
    """What the entry is when it is not a regular file ('a named pipe (FIFO)' ...), else None."""
    if stat.S_ISREG(st.st_mode):
        return None
    return next((what for test, what in _KINDS if test(st.st_mode)), "not a regular file")


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells that a file changed: size, modification and change times, inode."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading; NotRegularFile (an OSError) for anything else, unread."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        what = irregular_kind(os.fstat(fd))
        if what is not None:
            raise NotRegularFile(f"{what}, not a regular file: not read")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
