"""The build lock (one build or run writes the warehouse at a time) and the release of dead runs.

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
from dagster_project.lib.settings import PROJECT_ROOT


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


# A run launched from the UI, a sensor or the schedule: a process of its own executing a run of
# the job on the same instance, without the CLI's tag (what `dagster dev`'s run worker does).
OTHER_RUN = textwrap.dedent(
    """
    import sys
    from dagster import DagsterInstance
    from dagster_project.definitions import defs
    from dagster_project.defs.jobs import INGEST_KEYS

    job = defs.resolve_job_def("build_warehouse").get_subset(asset_selection=set(INGEST_KEYS), asset_check_selection=set())
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    sys.exit(0 if result.success else 1)
    """
)


def test_a_run_from_the_ui_waits_for_a_cli_build_for_its_whole_run(home, tmp_path):
    """Runs, not only steps, take turns on the working copy: a run that is not a CLI build's
    waits, before its first step, for the build holding $DAGSTER_HOME's lock, says so, and then
    runs."""
    (tmp_path / "landing" / "exports").mkdir(parents=True)
    working = tmp_path / "wh" / "warehouse.duckdb.build"
    lock = BuildLock.for_dagster_home(home)
    assert lock.try_acquire()  # a CLI build is running
    try:
        proc = _spawn(OTHER_RUN, env=_env(home), log=tmp_path / "other_run.log")
        deadline = time.monotonic() + 180
        while "waiting for the build that holds" not in proc.log.read_text():
            assert proc.poll() is None, proc.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the other run never said it waits"
            time.sleep(0.2)
        time.sleep(2)
        assert proc.poll() is None, "the other run went on while the CLI build held the lock"
        assert not working.exists(), "the other run's ingest touched the working copy"
    finally:
        lock.release()
    assert proc.wait(timeout=300) == 0, proc.log.read_text()[-3000:]
    assert working.exists()
    assert f"{lock.path} (pid {os.getpid()})" in proc.log.read_text()
