"""Publishing renames the working copy over the served file; the next working copy is copied back
in the background, and a build that starts before that copy is done waits for it.

Real DuckDB files in a temp dir, the real background process (`python -m
dagster_project.lib.warehouse.working_copy refresh`).
"""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.warehouse import working_copy as wh
from dagster_project.lib.warehouse.notices import collecting
from dagster_project.lib.settings import PROJECT_ROOT, Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    s = Settings(landing_dir=tmp_path / "landing", warehouse_path=tmp_path / "wh" / "warehouse.duckdb")
    wh.ensure_working_copy(s)
    return s


def _write_marker(settings: Settings, value: int, rows: int = 1) -> None:
    with wh.connect_working(settings) as con:
        # hashes do not compress: `rows` makes the file about 8 bytes a row, for a copy that takes a while
        con.execute(f"CREATE OR REPLACE TABLE main.marker AS SELECT {value} AS v, hash(range) AS h FROM range({rows})")


def _marker(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT max(v) FROM main.marker").fetchone()[0]
    finally:
        con.close()


def _refreshers(settings: Settings) -> list[int]:
    needle = str(settings.warehouse_path).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"dagster_project.lib.warehouse.working_copy" in argv and needle in argv:
                pids.append(int(entry.name))
    return pids


def test_publish_serves_at_once_and_the_working_copy_comes_back(settings):
    _write_marker(settings, 1)
    wh.publish(settings)
    assert _marker(settings.warehouse_path) == 1  # served as soon as publish returns
    wh.wait_for_working_copy(settings)
    assert settings.working_path.exists()
    assert filecmp.cmp(settings.working_path, settings.warehouse_path, shallow=False)
    leftovers = sorted(p.name for p in settings.data_dir.iterdir())
    assert leftovers == ["warehouse.duckdb", "warehouse.duckdb.build", "warehouse.duckdb.build.lock"]
    assert oct(settings.warehouse_path.stat().st_mode & 0o777) == "0o444"  # readers only: see docs/bi_tools.md
    assert settings.working_path.stat().st_mode & 0o200  # the copy back is the next build's to write
    assert _refreshers(settings) == []

    # the next build writes the copy, never the served file
    _write_marker(settings, 2)
    assert _marker(settings.warehouse_path) == 1 and _marker(settings.working_path) == 2
    wh.publish(settings)
    wh.wait_for_working_copy(settings)
    assert _marker(settings.warehouse_path) == _marker(settings.working_path) == 2


def test_a_build_starting_during_the_background_copy_waits_for_it(settings):
    # a served file of ~100 MB, so that the copy is still running when the next build starts
    _write_marker(settings, 7, rows=12_000_000)
    wh.publish(settings)
    assert not settings.working_path.exists(), "the copy finished before the test could start a build during it"
    assert _refreshers(settings), "no background copy running"
    wh.ensure_working_copy(settings)  # what every build does first
    assert _refreshers(settings) == []
    assert filecmp.cmp(settings.working_path, settings.warehouse_path, shallow=False)
    assert _marker(settings.working_path) == 7
    assert not list(settings.data_dir.glob("*.partial"))


def test_a_killed_background_copy_is_redone_by_the_next_build(settings):
    _write_marker(settings, 9, rows=12_000_000)
    wh.publish(settings)
    deadline = time.monotonic() + 30
    while not list(settings.data_dir.glob("*.build.*.partial")):  # killed mid-copy, as by a reboot
        assert not settings.working_path.exists(), "the copy was done before the test could kill it"
        assert time.monotonic() < deadline, "the background copy never started writing"
        time.sleep(0.002)
    for pid in _refreshers(settings):
        os.kill(pid, signal.SIGKILL)
    wh.wait_for_working_copy(settings)  # the kernel dropped the dead copy's lock
    assert not settings.working_path.exists() and list(settings.data_dir.glob("*.partial"))
    with collecting() as notices:
        wh.ensure_working_copy(settings)
    [notice] = notices  # said, not done silently
    assert "had not finished: it stopped half-way" in notice and "Copied again" in notice
    assert not list(settings.data_dir.glob("*.partial"))
    assert filecmp.cmp(settings.working_path, settings.warehouse_path, shallow=False)
    assert _marker(settings.working_path) == 9


def test_publish_can_copy_back_in_the_foreground(settings):
    _write_marker(settings, 3)
    wh.publish(settings, background=False)
    assert _refreshers(settings) == []
    assert _marker(settings.working_path) == _marker(settings.warehouse_path) == 3


def test_the_background_copy_refuses_bad_arguments():
    done = subprocess.run([sys.executable, "-m", "dagster_project.lib.warehouse.working_copy", "refresh"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "usage:" in done.stderr


def test_publish_without_a_working_copy_serves_nothing_new(settings):
    _write_marker(settings, 5)
    wh.publish(settings, background=False)
    settings.working_path.unlink()  # e.g. removed by hand, or a background copy that was killed
    with pytest.raises(FileNotFoundError, match="no working copy to publish"):
        wh.publish(settings)
    assert not settings.working_path.exists()  # not created empty by the attempt
    assert _marker(settings.warehouse_path) == 5
