"""Writing a file so that a reader sees the old content or the new, never half of it.

Everything the build writes for people to open (charts, HTML pages, Parquet files, the
DuckDB file BI tools read) is written under a temporary name beside its destination and
renamed over it: a rename within a folder is atomic, a write is not.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def temp_sibling(path: Path, tag: str = "tmp") -> Path:
    """A name beside `path` that no other writer uses (dot-prefixed: hidden from listings)."""
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (after a power cut the new name is still there)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not supported here (e.g. Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` in one rename.

    On an error the temporary file is removed and `path` keeps its old content. `durable`
    also flushes the file and the rename to disk (for the served warehouse, not for charts).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        yield tmp
        if durable:
            with tmp.open("rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
