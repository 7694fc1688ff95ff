"""The CLI's build lock, the release of dead runs, and the pruning of dbt/target.

A killed `make run` leaves its Dagster run STARTED with the `duckdb_warehouse` pool slot
claimed. The next build holds $DAGSTER_HOME/cli_build.lock (an flock the kernel drops when its
holder dies), so it knows every CLI-tagged unfinished run is dead and frees it, even when the
dead build's pid now belongs to a live process (here: the test itself, as after a container
restart). Everything is real: a Dagster instance in a temp DAGSTER_HOME with the project's
dagster.yaml, a run that claims the pool slot in a subprocess killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dagster_project import cli
from dagster_project.defs.resources import DUCKDB_POOL
from dagster_project.lib.warehouse.build_lock import BuildLock, BuildLockTimeout
from dagster_project.lib.settings import DBT_PROJECT_DIR, PROJECT_ROOT


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "wh" / "warehouse.duckdb"))
    monkeypatch.setenv("CUSTOMS_LANDING_DIR", str(tmp_path / "landing"))
    cli.dagster_home()  # created with the project's dagster.yaml (pool default_limit 1)
    return home


def _env(home: Path) -> dict:
    return {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)}


def _spawn(script: str, *args, env: dict, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:  # a file, not a pipe: Dagster's logs would fill a pipe and block
        proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=PROJECT_ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    proc.log = log
    return proc


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"helper exited {proc.returncode} before {path.name}: {proc.log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"helper did not get to {path.name} in {seconds} s")
        time.sleep(0.05)


# A CLI build in miniature: the build lock, then a run tagged like the CLI's whose step holds
# the duckdb_warehouse pool slot until the process is killed.
KILLED_BUILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dagster import DagsterInstance, job, op
    from dagster_project.cli import PID_TAG, dagster_home
    from dagster_project.defs.resources import DUCKDB_POOL
    from dagster_project.lib.warehouse.build_lock import BuildLock

    tag_pid, marker = sys.argv[1], Path(sys.argv[2])
    lock = BuildLock.for_dagster_home(dagster_home())
    assert lock.try_acquire()

    @op(pool=DUCKDB_POOL)
    def write_warehouse():
        marker.write_text("in the pool")
        time.sleep(600)

    @job
    def fake_build():
        write_warehouse()

    with DagsterInstance.get() as instance:
        fake_build.execute_in_process(instance=instance, tags={PID_TAG: tag_pid})
    """
)


def _claimed(instance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
    return {s.run_id for s in info.claimed_slots}


def test_a_dead_build_whose_pid_was_reused_is_released(home, tmp_path):
    from dagster import DagsterInstance, DagsterRunStatus, job, op

    marker = tmp_path / "in_pool"
    # The dead build's pid tag is the pid of this test: alive, as if the number was reused.
    proc = _spawn(KILLED_BUILD, os.getpid(), marker, env=_env(home), log=tmp_path / "killed_build.log")
    try:
        _wait_for(marker, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    @op
    def noop():
        pass

    @job
    def ui_job():
        noop()

    with DagsterInstance.get() as instance:
        (dead,) = [r for r in instance.get_runs() if r.tags.get(cli.PID_TAG)]
        assert dead.status == DagsterRunStatus.STARTED
        assert _claimed(instance) == {dead.run_id}, "the killed run should still hold the pool slot"
        # A run launched from the UI (no pid tag) is alive as far as we know: never touched.
        ui_run = instance.create_run_for_job(ui_job, status=DagsterRunStatus.STARTED)

        # The old pid check would keep waiting: the tagged pid is alive.
        assert cli._pid_alive(int(dead.tags[cli.PID_TAG]))

        lock = BuildLock.for_dagster_home(home)
        with pytest.raises(RuntimeError, match="needs the build lock"):
            cli.release_dead_runs(instance, lock)
        assert lock.try_acquire(), "the kernel should have dropped the killed build's lock"
        try:
            released = cli.release_dead_runs(instance, lock)
        finally:
            lock.release()

        assert [(r.run_id, r.pid, r.pid_reused) for r in released] == [(dead.run_id, str(os.getpid()), True)]
        assert "another process" in released[0].describe()
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        assert _claimed(instance) == set(), "the pool slot should be free"
        assert instance.get_run_by_id(ui_run.run_id).status == DagsterRunStatus.STARTED


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dagster_project.lib.warehouse.build_lock import BuildLock

    lock = BuildLock(sys.argv[1])
    assert lock.try_acquire()
    Path(sys.argv[2]).write_text("held")
    time.sleep(float(sys.argv[3]))
    """
)


def _hold(lock_path: Path, marker: Path, seconds: float) -> subprocess.Popen:
    proc = _spawn(HOLDER, lock_path, marker, seconds, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                  log=marker.with_suffix(".log"))
    _wait_for(marker, proc, 30)
    return proc


def test_a_second_build_is_told_another_one_is_running(home, tmp_path, capsys):
    lock_path = home / "cli_build.lock"
    holder = _hold(lock_path, tmp_path / "held", 600)
    try:
        lock = BuildLock(lock_path)
        assert not lock.try_acquire()
        assert lock.holder_pid() == holder.pid
        with pytest.raises(BuildLockTimeout, match=f"another build \\(pid {holder.pid}\\)"):
            lock.acquire(timeout=0)
        assert not lock.held

        # The CLI itself, told not to wait: exit 2 with the holder's pid, before loading anything.
        assert cli.main(["build", "--lock-timeout", "0.3"]) == 2
        err = capsys.readouterr()
        assert f"another build (pid {holder.pid}) is running" in err.out
        assert "not building" in err.err
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    # Killed, whatever its pid becomes: the lock is free.
    assert lock.try_acquire()
    lock.release()


def test_a_second_build_waits_for_the_first_and_says_so_once(home, tmp_path):
    lock_path = home / "cli_build.lock"
    holder = _hold(lock_path, tmp_path / "held", 1.5)
    try:
        calls = []
        lock = BuildLock(lock_path)
        started = time.monotonic()
        lock.acquire(on_wait=calls.append, poll=0.05)
        waited = time.monotonic() - started
        assert lock.held and lock.holder_pid() == os.getpid()
        assert calls == [holder.pid]
        assert holder.poll() is not None and waited > 0.3
        lock.release()
        assert lock_path.exists(), "the lock file is never deleted (a new inode would split the lock)"
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)


# --------------------------------------------------------------------------- dbt/target


def _folder(target: Path, name: str, age_s: float, now: float) -> Path:
    path = target / name
    (path / "compiled" / "customs").mkdir(parents=True)
    (path / "compiled" / "customs" / "m.sql").write_text("select 1")
    (path / "dbt.log").write_text("x" * 1000)
    for p in [path / "compiled" / "customs" / "m.sql", path / "compiled" / "customs", path / "compiled", path / "dbt.log", path]:
        os.utime(p, (now - age_s, now - age_s))
    return path


def test_prune_keeps_the_newest_invocation_folders_and_everything_else(tmp_path):
    now = time.time()
    target = tmp_path / "target"
    target.mkdir()
    for name in ("manifest.json", "partial_parse.msgpack", "run_results.json", "semantic_manifest.json"):
        (target / name).write_text("{}")
    (target / "compiled").mkdir()
    (target / "run").mkdir()
    (target / "notes-abcdef0-1234567.txt").write_text("not a folder")
    (target / "0123456").write_text("a file with a folder's name")
    (target / "my-folder").mkdir()

    hours = 3600
    build = [_folder(target, f"customs_dbt_models-{i:07x}-{i + 100:07x}", (10 - i) * hours, now) for i in range(6)]
    docs = [_folder(target, f"{i + 0xabc000:07x}", (10 - i) * hours, now) for i in range(5)]
    other_op = [_folder(target, "some_op-1111111-2222222", 9 * hours, now)]
    # Old by creation, but dbt is still writing its log: another build's dbt running now.
    live = _folder(target, "customs_dbt_models-fffffff-eeeeeee", 20 * hours, now)
    (live / "dbt.log").write_text("still running")

    pruned = cli.prune_dbt_target(target, keep=3, grace_s=hours)

    # Newest by activity: the live folder, then the two youngest builds; three docs folders.
    removed = {p.name for p in pruned.removed}
    assert removed == {p.name for p in build[:4] + docs[:2]}
    untouched = {"manifest.json", "partial_parse.msgpack", "run_results.json", "semantic_manifest.json",
                 "compiled", "run", "notes-abcdef0-1234567.txt", "0123456", "my-folder"}
    assert {p.name for p in target.iterdir()} == untouched | {p.name for p in build[4:] + docs[2:] + other_op + [live]}
    assert pruned.bytes >= 6 * 1000 and pruned.kept == 3 + 3 + 1

    # Keeping none: only the folder written in the last hour (another build's running dbt) stays.
    pruned = cli.prune_dbt_target(target, keep=0, grace_s=hours)
    assert {p.name for p in pruned.removed} == {p.name for p in build[4:] + docs[2:] + other_op}
    assert {p.name for p in target.iterdir()} == untouched | {live.name}
    assert cli.prune_dbt_target(target, keep=0, grace_s=hours).removed == []
    assert cli.prune_dbt_target(tmp_path / "absent").removed == []


def test_prune_recognises_dagster_dbt_folder_names(monkeypatch, tmp_path):
    """The names dagster-dbt gives its invocation folders, from the installed DbtCliResource."""
    from dagster_dbt import DbtCliResource

    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    assert cli.dbt_target_dir() == DBT_PROJECT_DIR / "target"
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "t"))
    assert cli.dbt_target_dir() == tmp_path / "t"

    resource = DbtCliResource(project_dir=str(DBT_PROJECT_DIR), dbt_executable=str(Path(sys.executable).with_name("dbt")))
    bare = resource._get_unique_target_path(context=None)
    assert bare.parent == tmp_path / "t"
    assert cli.INVOCATION_DIR.match(bare.name) and cli.INVOCATION_DIR.match(bare.name).group("op") is None
    # With a context the name is f"{op name}-{run_id[:7]}-{uuid[:7]}" (see _get_unique_target_path).
    with_context = f"customs_dbt_models-{'0f1e2d3c-aaaa'[:7]}-{bare.name}"
    assert cli.INVOCATION_DIR.match(with_context).group("op") == "customs_dbt_models"
