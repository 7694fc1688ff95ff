"""Faults (issue 7): a build killed at any moment never leaves a half-built served file, the
re-run converges to a clean build, and builds are deterministic whatever the load order.

The kill harness is scripts/chaos.py (`make chaos` runs 20 kill points); here it runs a
few (CHAOS_POINTS, default 3: one in ingest, one in dbt, one mid-publish, while the copy
of the working copy is being written) to stay within CI's time, about 2-4 minutes with
its reference builds. CHAOS_SEED picks the random delays (default 7).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.warehouse import working_copy as wh
from dagster_project.lib.settings import PROJECT_ROOT, Settings


def _load_chaos():
    spec = importlib.util.spec_from_file_location("chaos", PROJECT_ROOT / "scripts" / "chaos.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["chaos"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


chaos = _load_chaos()

POINTS = int(os.environ.get("CHAOS_POINTS", "3"))
SEED = int(os.environ.get("CHAOS_SEED", "7"))


@pytest.fixture(scope="module")
def chaos_report(tmp_path_factory):
    """The reference builds (a clean build with the files landed newest first) and the kill points."""
    return chaos.run_chaos(POINTS, SEED, jobs=3, workdir=tmp_path_factory.mktemp("chaos"), reverse_clean=True,
                           log=lambda msg: print(msg, flush=True))


@pytest.mark.kill
def test_a_killed_build_leaves_the_served_file_whole_and_the_rerun_converges(chaos_report):
    report = chaos_report
    print(report.summary())
    assert len(report.outcomes) == POINTS
    assert not report.violations, report.summary()
    assert all(o.served in ("previous", "new") for o in report.outcomes)
    assert all(o.rerun == "ok" and o.rerun_identical for o in report.outcomes)


@pytest.mark.kill
def test_clean_builds_are_deterministic_whatever_the_load_order(chaos_report, sample_build):
    """The CLI's clean build loaded the monthly files newest first; the session's sample build
    oldest first. The rest of the sample (a revision among it) lands after them in both."""
    reverse = chaos.served_path(chaos_report.workdir / "clean")
    forward = sample_build.warehouse

    def load_order(path: Path) -> list[str]:
        con = duckdb.connect(str(path), read_only=True)
        try:
            return [r[0] for r in con.execute(
                "SELECT file_path FROM raw.customs_loads WHERE regexp_full_match(file_path, 'exports/gacc_exports_[0-9]{6}[.]csv') "
                "ORDER BY load_seq").fetchall()]
        finally:
            con.close()

    assert load_order(reverse) == list(reversed(load_order(forward))), "the two builds did not load in opposite orders"
    assert chaos.marts_hash(reverse) == chaos.marts_hash(forward) == chaos_report.clean_hash


# --------------------------------------------------------------------------- stale files after a kill
# A WAL lying beside a DuckDB file is replayed by whoever opens that file next (read-only
# connections too), even when the file is a different database by then.

KILLED_WRITER = """
import duckdb, os, sys
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE main.ghost AS SELECT 42 AS x")  # committed to the WAL, not checkpointed
os.kill(os.getpid(), 9)
"""


def killed_writer(path: Path) -> None:
    """A process that writes `path` and is killed before it checkpoints: `path.wal` is left."""
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], check=False)
    assert path.with_name(path.name + ".wal").exists()


def has_ghost(path: Path) -> bool:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'ghost'").fetchone()[0])
    finally:
        con.close()


@pytest.fixture
def settings(tmp_path) -> Settings:
    s = Settings(landing_dir=tmp_path / "landing", warehouse_path=tmp_path / "wh" / "warehouse.duckdb")
    wh.ensure_working_copy(s)
    wh.publish(s, background=False)
    return s


def test_a_new_working_copy_never_replays_the_wal_of_a_deleted_one(settings):
    killed_writer(settings.working_path)
    settings.working_path.unlink()  # e.g. removed by hand to start again from the served file
    wh.ensure_working_copy(settings)
    assert not has_ghost(settings.working_path)


def test_publish_discards_a_wal_left_beside_the_served_file(settings):
    killed_writer(settings.warehouse_path)  # someone opened the served file read-write and died
    wh.publish(settings)
    assert not has_ghost(settings.warehouse_path)
    assert not settings.warehouse_path.with_name(settings.warehouse_path.name + ".wal").exists()


def test_publish_audit_only_ignores_a_wal_left_under_its_temp_name(settings):
    # a killed build with the same pid (containers reuse pids) left its temp file's WAL
    tmp = settings.warehouse_path.with_name(f"{settings.warehouse_path.name}.{os.getpid()}.audit.partial")
    wh._create_empty(tmp)
    killed_writer(tmp)
    tmp.unlink()
    wh.publish_audit_only(settings)
    assert not has_ghost(settings.warehouse_path)


def test_the_next_build_removes_what_a_killed_one_left(settings):
    name = settings.warehouse_path.name
    left = [settings.data_dir / f"{name}.4242.partial", settings.data_dir / f"{name}.4242.audit.partial",
            settings.data_dir / f"{name}.4242.audit.partial.wal", settings.data_dir / f"{name}.build.4242.partial",
            settings.staging_dir / "0123456789abcdef.csv"]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    wh.ensure_working_copy(settings)
    assert [p.name for p in left if p.exists()] == []
    assert settings.working_path.exists() and settings.warehouse_path.exists()
