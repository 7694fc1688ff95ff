"""Files the ingest refuses without reading a byte of them (not even to hash them), and whether
an earlier refusal still stands."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from dagster_project.lib.ingest.landing_files import LandingFile
from dagster_project.lib.ingest.regular_files import irregular_kind, open_regular
from dagster_project.lib.ingest.transcode import sha256_of

# A GACC download stops at 10,000 rows (about 2 MB); anything this large is not one.
MAX_FILE_BYTES = int(os.environ.get("CUSTOMS_MAX_FILE_BYTES", str(512 * 1024 * 1024)))


def cannot_read(exc: OSError, what: str = "file", st: os.stat_result | None = None) -> str:
    """The reason for a file or folder the build may not read (`st`: its stat, when there is one)."""
    error = exc.strerror or str(exc)
    mode = f", mode {stat.filemode(st.st_mode)}" if st is not None else ""
    if exc.errno in (errno.EACCES, errno.EPERM):
        needs = "read permission" if what == "file" else "read and search permission (r and x)"
        return (f"cannot read the {what} ({error}{mode}): the user running the build needs {needs} on it; "
                "fix the permissions or remove it")
    if exc.errno == errno.ENOENT:
        return f"cannot read the {what} ({error}): a broken symbolic link, or removed while the build ran"
    return f"cannot read the {what} ({error}{mode})"


def unreadable_dir_reason(exc: OSError) -> str:
    return cannot_read(exc, "folder") + "; none of the files in it are loaded"


def _unreachable(lf: LandingFile, landing_dir: Path) -> str | None:
    """Why a file that was listed has no stat: its folder could be listed (r) but not entered (x)."""
    if lf.error is None or lf.error.errno not in (errno.EACCES, errno.EPERM):
        return None
    folder = lf.path.parent.relative_to(landing_dir).as_posix()
    return (f"cannot reach the file ({lf.error.strerror}): its folder {folder}/ can be listed but not entered "
            "(no search permission, x); fix the folder's permissions (chmod +x) or move the file")


def refuse_before_reading(lf: LandingFile, landing_dir: Path) -> str | None:
    """The reason to refuse the file unread, or None to read it."""
    try:
        is_link = stat.S_ISLNK(lf.path.lstat().st_mode)
    except OSError as exc:
        return _unreachable(lf, landing_dir) or cannot_read(exc)
    if is_link:
        target = lf.path.resolve()
        root = landing_dir.resolve()
        if target != root and root not in target.parents:
            return "symbolic link pointing outside the landing directory: not read"
    if lf.stat is None:
        return cannot_read(lf.error) if lf.error is not None else "cannot read the file"
    kind = irregular_kind(lf.stat)
    if kind is not None:
        return (f"{kind}, not a regular file: refused without opening it (a download is a regular file); "
                "remove it from the landing directory")
    size = lf.stat.st_size
    if size > MAX_FILE_BYTES:
        return (f"file of {size / 1e6:,.0f} MB is larger than {MAX_FILE_BYTES / 1e6:,.0f} MB: a GACC download stops at "
                "10,000 rows (about 2 MB); split the data into downloads (or raise CUSTOMS_MAX_FILE_BYTES)")
    return None


def rejection_stands(landing_dir: Path, rel: str, sha: str | None) -> bool:
    """Whether a rejection of `rel` (with the content `sha`, or None if it was refused unread)
    still applies to what is in the landing directory now. Nothing but a regular file is opened.

    A file or folder refused unread stands while it is still there and still refused: not a
    regular file, unreadable, too large, a link out of the landing directory. A rejected content
    stands while the file still has it.
    """
    path = landing_dir / rel
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return sha is None  # a folder above it cannot be searched: still unreadable
    try:
        st = path.stat()
    except OSError:
        return sha is None
    if stat.S_ISDIR(st.st_mode):
        if sha is not None:
            return False
        try:
            with os.scandir(path):
                return False  # it can be listed now: its files are read (and judged) one by one
        except OSError:
            return True
    if sha is None:
        lf = LandingFile(path, rel, st)
        if refuse_before_reading(lf, landing_dir) is not None:
            return True
        try:
            with open_regular(path):
                return False
        except OSError:
            return True
    if irregular_kind(st) is not None:
        return False
    try:
        return sha256_of(path) == sha
    except OSError:
        return False
