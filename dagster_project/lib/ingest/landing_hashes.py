"""Each landing file's SHA-256, remembered in raw.landing_file_hashes between builds."""

from __future__ import annotations

import datetime as dt
import time

import duckdb

from dagster_project.lib.ingest.landing_files import LandingFile
from dagster_project.lib.ingest.regular_files import stat_key
from dagster_project.lib.ingest.settling import check_unchanged
from dagster_project.lib.ingest.transcode import sha256_of


class LandingHashes:
    """Each landing file's SHA-256, read again only when the file changed.

    A national landing directory is thousands of files (6 GB at the full size): hashing every
    one on every build took 5 s at 10 years of history, and grows with it. A hash is reused
    while the file has the size, modification time, change time and inode it was computed
    for. The change time moves on any write, rename or `touch`, even when a tool puts the
    modification time back (`cp -p`, `rsync -t`). A file stat'ed within two seconds of its
    last change is not remembered: a write in the same clock tick could leave every time as
    it was.
    """

    RACY_NS = 2_000_000_000

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.known = {
            path: (key, sha) for path, *key, sha in con.execute(
                "SELECT file_path, size_bytes, mtime_ns, ctime_ns, inode, file_sha256 FROM raw.landing_file_hashes"
            ).fetchall()
        }
        self.fresh: dict[str, tuple] = {}  # path -> (size, mtime, ctime, inode, sha) to remember
        self.outdated: list[str] = []  # remembered for a status the file no longer has
        self.hashed = 0  # files read this build

    def sha256(self, lf: LandingFile) -> str:
        """The file's SHA-256; Deferred if it changed since the landing directory was listed, or
        while it was hashed (a download still being written), and then nothing is remembered."""
        now = time.time_ns()
        st = lf.path.stat()
        if lf.stat is not None and stat_key(st) != stat_key(lf.stat):
            check_unchanged(lf, "since the landing directory was listed")
        key = list(stat_key(st))
        cached = self.known.get(lf.rel)
        if cached is not None and list(cached[0]) == key:
            return cached[1]
        sha = sha256_of(lf.path)
        self.hashed += 1
        if cached is not None:
            self.outdated.append(lf.rel)
        if stat_key(lf.path.stat()) != tuple(key):
            check_unchanged(lf, "while it was hashed")
        if now - max(st.st_mtime_ns, st.st_ctime_ns) >= self.RACY_NS:
            self.fresh[lf.rel] = (*key, sha)
        return sha

    def forget(self, rel: str) -> None:
        """The file's content was not what its hash said (it changed after hashing): hash it again next time."""
        self.fresh.pop(rel, None)
        if rel in self.known:
            self.outdated.append(rel)

    def save(self, con: duckdb.DuckDBPyConnection, present: set[str] | None) -> None:
        """Remember the new hashes; with `present` (a whole-directory scan), forget files gone since."""
        gone = [] if present is None else [p for p in self.known if p not in present]
        changed = list(self.fresh.items())
        if not changed and not gone and not self.outdated:
            return
        columns = list(zip(*[(path, *entry) for path, entry in changed])) if changed else [[]] * 6
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM raw.landing_file_hashes WHERE list_contains($paths, file_path)",
                        {"paths": [path for path, _ in changed] + gone + self.outdated})
            if changed:
                con.execute(
                    """INSERT INTO raw.landing_file_hashes
                       SELECT unnest($p), unnest($s), unnest($m), unnest($c), unnest($i), unnest($h), $t""",
                    {"p": list(columns[0]), "s": list(columns[1]), "m": list(columns[2]), "c": list(columns[3]),
                     "i": list(columns[4]), "h": list(columns[5]),
                     "t": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)},
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
