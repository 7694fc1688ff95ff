"""A build reads again only the landing files that changed (raw.landing_file_hashes).

Hashing every file of a national landing directory on every build grew with history (5 s at
10 years). These tests run the real ingest on a real warehouse and check both halves of the
cache: unchanged files are not read, and any change (even one that keeps size and
modification time, as `cp -p` does) is read and loaded as a new release.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.ingest.landing import ingest_landing
from dagster_project.lib.ingest.landing_hashes import LandingHashes
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse.working_copy import ensure_working_copy
from gacc_files import magnet_row, write_extract

TODAY = dt.date(2026, 1, 15)


@pytest.fixture
def setup(tmp_path: Path):
    landing = tmp_path / "landing"
    settings = Settings(landing_dir=landing, warehouse_path=tmp_path / "warehouse.duckdb")
    paths = [
        write_extract(landing / "exports" / f"magnets_2025{m:02d}.csv",
                      [magnet_row(f"2025{m:02d}", "502", 1000 + m, 90000 + m), magnet_row(f"2025{m:02d}", "116", 200, 9000)])
        for m in (4, 5, 6)
    ]
    ensure_working_copy(settings)
    con = duckdb.connect(str(settings.working_path))
    yield con, landing, settings, paths
    con.close()


def _ingest(con, landing, settings):
    return ingest_landing(con, landing, settings.staging_dir, today=TODAY)


def _cached(con) -> dict[str, str]:
    return dict(con.execute("SELECT file_path, file_sha256 FROM raw.landing_file_hashes").fetchall())


def _settle():
    """Let the files' last change fall outside the window in which a hash is not remembered."""
    time.sleep(LandingHashes.RACY_NS / 1e9 + 0.1)


def test_unchanged_files_are_not_read_again(setup):
    con, landing, settings, paths = setup
    _settle()
    first = _ingest(con, landing, settings)
    assert len(first.loaded) == 3 and first.hashed == 3
    assert _cached(con) == {p.relative_to(landing).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}

    again = _ingest(con, landing, settings)
    assert again.hashed == 0 and again.loaded == [] and len(again.skipped) == 3


def test_same_size_same_mtime_rewrite_is_read_and_loaded(setup):
    con, landing, settings, paths = setup
    _settle()
    _ingest(con, landing, settings)
    target = paths[1]
    before = target.stat()
    data = target.read_bytes()
    changed = data.replace(b"\"1,005\"", b"\"1,009\"")  # 2025-05 to partner 502: 1,005 kg -> 1,009 kg
    assert changed != data and len(changed) == len(data)
    target.write_bytes(changed)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # what `cp -p` or `rsync -t` leave
    assert target.stat().st_mtime_ns == before.st_mtime_ns and target.stat().st_size == before.st_size

    report = _ingest(con, landing, settings)
    assert report.hashed == 1 and [r.file_path for r in report.loaded] == ["exports/magnets_202505.csv"]
    kg = con.execute(
        """SELECT r.quantity FROM raw.customs_rows r JOIN raw.customs_loads USING (load_id)
           WHERE partner_code = '502' AND r.period_start = DATE '2025-05-01' ORDER BY load_seq DESC LIMIT 1"""
    ).fetchone()[0]
    assert kg == 1009
    # changed a moment ago, so its hash waits for the next build to be remembered
    assert "exports/magnets_202505.csv" not in _cached(con)
    _settle()
    assert _ingest(con, landing, settings).hashed == 1
    assert _cached(con)["exports/magnets_202505.csv"] == hashlib.sha256(changed).hexdigest()


def test_file_changed_just_now_is_hashed_again_next_time(setup, monkeypatch):
    con, landing, settings, _ = setup
    # no settle interval: waiting for the files to settle would age them past the racy window
    monkeypatch.setenv("CUSTOMS_SETTLE_SECONDS", "0")
    # written a moment ago: a write in the same clock tick could keep its times, so not remembered
    report = _ingest(con, landing, settings)
    assert report.hashed == 3 and len(report.loaded) == 3
    assert _cached(con) == {}
    _settle()
    again = _ingest(con, landing, settings)
    assert again.hashed == 3 and again.loaded == [] and len(again.skipped) == 3
    assert len(_cached(con)) == 3


def test_removed_and_replaced_files(setup):
    con, landing, settings, paths = setup
    _settle()
    _ingest(con, landing, settings)
    paths[0].unlink()
    # a new file put in place of another by rename (a new inode, same name)
    replacement = write_extract(landing / "exports" / "tmp.csv", [magnet_row("202506", "502", 1106, 90006)])
    replacement.replace(paths[2])
    _settle()
    report = _ingest(con, landing, settings)
    assert report.hashed == 1
    assert [r.file_path for r in report.loaded] == ["exports/magnets_202506.csv"]
    assert sorted(_cached(con)) == ["exports/magnets_202505.csv", "exports/magnets_202506.csv"]
