"""Damaged copies, careless writers, honest messages (issue 18): what a user meets, and what a build does.

* a working copy cut short (a full disk, a crash of the machine) is rebuilt from the served
  file, saying so; with the served file damaged too the build stops and says what to do, and
  `make run`'s report prints no traceback;
* the served file is read-only on disk; a WAL a careless writer left beside it is set aside
  by the next build, which says so, and never reaches what readers see;
* a step that fails after the publish says that the new file WAS published; a failed
  background copy is said and redone by the next build.

Real DuckDB files, real builds through Dagster (`Workspace.build`) of a few sample months, the
real CLI in a subprocess, the real background copy.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from conftest import Workspace, make_workspace
from dagster_project.lib.serving.run_report import print_run_report
from dagster_project.lib.settings import PROJECT_ROOT, Settings
from dagster_project.lib.warehouse import working_copy as wh
from dagster_project.lib.warehouse.damage import WarehouseDamaged
from dagster_project.lib.warehouse.notices import collecting
from gacc_files import copy_sample
from test_publish import _marker, _write_marker

BASE_MONTHS = ["202505", "202506"]
NEW_MONTH = "202507"
LINEAGE_COLUMNS = {"load_id", "source_load_ids", "loaded_at", "dagster_run_id"}


def figures(path: Path) -> str:
    """A hash of every mart's rows (ordered by all columns), without the lineage columns a rebuild renumbers."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        digest = hashlib.sha256()
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts' ORDER BY 1").fetchall()]
        for table in tables:
            columns = [r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'marts' AND table_name = $t "
                "ORDER BY column_index", {"t": table}).fetchall() if r[0] not in LINEAGE_COLUMNS]
            rows = con.execute(f"SELECT {', '.join(columns)} FROM marts.{table} ORDER BY ALL").fetchall()
            digest.update(f"{table}{columns}{rows!r}".encode())
        return digest.hexdigest()
    finally:
        con.close()


def settings_of(ws: Workspace) -> Settings:
    return Settings(landing_dir=ws.landing, warehouse_path=ws.warehouse)


def working(ws: Workspace) -> Path:
    return settings_of(ws).working_path


def copy_workspace(ws: Workspace, root: Path, monkeypatch) -> Workspace:
    """The built workspace (landing, warehouse, Dagster's record) as another user's clone of it."""
    shutil.copytree(ws.landing.parent, root, symlinks=True)
    copy = make_workspace(root)
    monkeypatch.setenv("CUSTOMS_LANDING_DIR", str(copy.landing))
    monkeypatch.setenv("WAREHOUSE_PATH", str(copy.warehouse))
    return copy


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two months built and published, and the figures the next month's build gives without any damage."""
    saved = {k: os.environ.get(k) for k in ("CUSTOMS_LANDING_DIR", "WAREHOUSE_PATH")}
    ws = make_workspace(tmp_path_factory.mktemp("built") / "ws")
    copy_sample(ws.landing, months=BASE_MONTHS)
    reference = make_workspace(tmp_path_factory.mktemp("reference") / "ws")
    with collecting() as notices:
        assert ws.build().success, "the base build failed"
        shutil.copytree(ws.landing.parent, reference.landing.parent, symlinks=True, dirs_exist_ok=True)
        copy_sample(reference.landing, months=[NEW_MONTH])
        assert reference.build().success, "the reference build failed"
    assert notices == []  # nothing damaged, nothing to say (a file DuckDB trimmed is not a truncated one)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return ws, figures(reference.warehouse)


def cut_short(path: Path, size: str) -> None:
    os.truncate(path, path.stat().st_size // 2 if size == "half" else int(size))


# --------------------------------------------------------------------------- 5. a working copy cut short


@pytest.mark.slow
@pytest.mark.parametrize("size", ["half", "100"])
def test_a_working_copy_cut_short_is_rebuilt_from_the_served_file(built, size, tmp_path, monkeypatch):
    base, expected = built
    ws = copy_workspace(base, tmp_path / "ws", monkeypatch)
    cut_short(working(ws), size)  # the machine went down, or the disk filled up
    copy_sample(ws.landing, months=[NEW_MONTH])  # the next month lands

    with collecting() as notices:
        result = ws.build()

    assert result.success
    [rebuilt] = [n for n in notices if "could not be read" in n]
    assert f"rebuilt from the served file {ws.warehouse}" in rebuilt
    [kept] = list(ws.warehouse.parent.glob(f"{ws.warehouse.name}.build.damaged-*"))
    assert str(kept) in rebuilt and kept.stat().st_size < ws.warehouse.stat().st_size  # kept for inspection
    assert figures(ws.warehouse) == expected  # as if nothing had happened
    assert ws.scalar("SELECT count(*) FROM raw.customs_loads") == 3
    assert ws.scalar("SELECT sum(row_count) FROM raw.customs_loads") == ws.scalar("SELECT count(*) FROM raw.customs_rows")
    # the run's log says it too (the UI shows it on the ingest step)
    with ws.instance() as instance:
        logged = [e.user_message for e in instance.all_logs(result.runs[0].run_id)]
    assert any("could not be read" in m and "rebuilt from the served file" in m for m in logged)


def _cli_build(ws: Workspace) -> subprocess.CompletedProcess:
    env = dict(os.environ, CUSTOMS_LANDING_DIR=str(ws.landing), WAREHOUSE_PATH=str(ws.warehouse),
               DAGSTER_HOME=str(ws.dagster_home))
    return subprocess.run([sys.executable, "-m", "dagster_project.cli", "build"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_both_copies_damaged_stop_the_build_with_what_to_do_and_no_traceback(built, tmp_path, monkeypatch):
    base, _ = built
    ws = copy_workspace(base, tmp_path / "ws", monkeypatch)
    reference = figures(ws.warehouse)
    cut_short(working(ws), "100")
    cut_short(ws.warehouse, "half")

    done = _cli_build(ws)  # make run

    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    report = done.stdout[done.stdout.index("\nRun "):]
    assert "Traceback" not in report and 'File "' not in report, report
    assert f"Cannot read {ws.warehouse}: Could not read enough bytes" in report  # one line, not a traceback
    assert "WarehouseDamaged" in report and f"the served file {ws.warehouse} is damaged too" in report
    assert f"mv '{ws.warehouse}' '{ws.warehouse}.damaged'" in report  # which file to move away
    assert f"The landing files in {ws.landing} are intact" in report
    assert "make clean && make run" in report
    assert "keeps its last good state" not in report  # it cannot be read: nothing good to keep
    assert len(list(ws.warehouse.parent.glob(f"{ws.warehouse.name}.build.damaged-*"))) == 1

    # doing what it says: the warehouse is rebuilt from the landing files
    os.replace(ws.warehouse, ws.warehouse.with_name(ws.warehouse.name + ".damaged"))
    assert ws.build().success
    assert figures(ws.warehouse) == reference


def test_a_working_copy_with_a_broken_header_is_set_aside_and_copied_again(tmp_path):
    s = _published(tmp_path, marker=4)
    with s.working_path.open("rb+") as handle:
        handle.write(b"\0" * 4096)  # DuckDB's magic bytes gone
    with collecting() as notices:
        wh.ensure_working_copy(s)
    assert _marker(s.working_path) == 4
    [notice] = notices
    assert "not a valid DuckDB database file" in notice and "rebuilt from the served file" in notice


def test_a_working_copy_cut_short_past_its_metadata_is_caught_before_the_build_reads_it(tmp_path):
    """Checkpointed more than once, a file's metadata is not at its end: cut short, it still opens,
    and only a query reaching a missing block fails (mid-build). Its header's block count tells."""
    s = _published(tmp_path, marker=5)
    with wh.connect_working(s) as con:  # (in DuckDB 1.5, this puts the last metadata before the big table)
        for sql in ("CREATE TABLE main.s0 AS SELECT 1 AS x", "CREATE TABLE main.big AS SELECT range AS i, "
                    "hash(range) AS h FROM range(2000000)", "CREATE TABLE main.s1 AS SELECT 1 AS x"):
            con.execute(sql)
            con.execute("CHECKPOINT")
    os.truncate(s.working_path, s.working_path.stat().st_size - 4 * 262144)
    opened = duckdb.connect(str(s.working_path), read_only=True)  # what a plain open sees: nothing wrong
    opened.close()
    with collecting() as notices:
        wh.ensure_working_copy(s)
    [notice] = notices
    assert "truncated" in notice and "rebuilt from the served file" in notice
    assert _marker(s.working_path) == 5


def test_a_damaged_working_copy_without_a_served_file_stops_and_the_next_build_starts_afresh(tmp_path):
    s = Settings(landing_dir=tmp_path / "landing", warehouse_path=tmp_path / "wh" / "warehouse.duckdb")
    wh.ensure_working_copy(s)  # a first build, killed before it published
    cut_short(s.working_path, "100")
    with pytest.raises(WarehouseDamaged, match="there is no served file") as raised:
        wh.ensure_working_copy(s)
    assert "run `make run` again: it starts an empty working copy" in str(raised.value)
    [kept] = list(s.data_dir.glob("*.build.damaged-*"))
    assert str(kept) in str(raised.value)
    wh.ensure_working_copy(s)  # doing what it says
    con = duckdb.connect(str(s.working_path), read_only=True)
    assert con.execute("SELECT count(*) FROM raw.customs_loads").fetchone()[0] == 0
    con.close()


def test_a_damaged_served_file_with_no_working_copy_stops_with_what_to_do(tmp_path):
    s = _published(tmp_path, marker=6)
    s.working_path.unlink()  # the background copy never made one
    cut_short(s.warehouse_path, "half")
    with pytest.raises(WarehouseDamaged, match="There is no working copy, and the served file") as raised:
        wh.ensure_working_copy(s)
    assert f"mv '{s.warehouse_path}'" in str(raised.value)
    assert not s.working_path.exists() and not list(s.data_dir.glob("*.partial"))  # no copy of the damage left


def test_a_working_copy_another_process_holds_is_not_damaged(tmp_path):
    """A lock is not damage: the file is neither moved nor copied over."""
    s = _published(tmp_path, marker=7)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(s.working_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(duckdb.IOException, match="lock"):
            wh.ensure_working_copy(s)
    finally:
        holder.kill()
        holder.wait()
    assert not list(s.data_dir.glob("*.damaged-*"))
    wh.ensure_working_copy(s)
    assert _marker(s.working_path) == 7


HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(120)
"""


# --------------------------------------------------------------------------- 6. careless writers

CARELESS_WRITER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])  # read-write, as a BI tool set up carelessly (root: the mode does not stop it)
con.execute("PRAGMA disable_checkpoint_on_shutdown")
con.execute("CREATE TABLE main.scribble AS SELECT 42 AS x")
con.close()  # committed to the WAL, never checkpointed into the file
"""


def careless_writer(path: Path, as_root: bool = True) -> subprocess.CompletedProcess:
    """The writer; `as_root=False`: as any other user, for whom file modes count (root without the
    capability to override them, when the tests run as root)."""
    command = [sys.executable, "-c", CARELESS_WRITER, str(path)]
    if not as_root and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot write as a user whom file modes stop")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    return subprocess.run(command, capture_output=True, text=True)


def has_scribble(path: Path) -> bool:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'scribble'").fetchone()[0])
    finally:
        con.close()


def test_the_served_file_is_read_only_on_disk_and_the_working_copy_writable(tmp_path):
    s = _published(tmp_path, marker=1)  # with the background copy, as a build does
    assert stat.S_IMODE(s.warehouse_path.stat().st_mode) == 0o444
    assert stat.S_IMODE(s.working_path.stat().st_mode) & stat.S_IWUSR
    wh.publish_audit_only(s)  # a failed build's audit tables: served the same way
    assert stat.S_IMODE(s.warehouse_path.stat().st_mode) == 0o444
    done = careless_writer(s.warehouse_path, as_root=False)  # a BI tool set up read-write
    assert done.returncode != 0 and "Permission denied" in done.stderr, done.stderr
    assert not has_scribble(s.warehouse_path)
    assert not s.warehouse_path.with_name(s.warehouse_path.name + ".wal").exists()


@pytest.mark.slow
def test_a_wal_a_careless_writer_left_is_set_aside_by_the_next_build_and_never_served(built, tmp_path, monkeypatch):
    base, _ = built
    ws = copy_workspace(base, tmp_path / "ws", monkeypatch)
    assert stat.S_IMODE(ws.warehouse.stat().st_mode) == 0o444  # what a build publishes
    published = figures(ws.warehouse)
    done = careless_writer(ws.warehouse)  # as root, which ignores the mode
    assert done.returncode == 0, done.stderr
    wal = ws.warehouse.with_name(ws.warehouse.name + ".wal")
    assert wal.exists()
    working(ws).unlink()  # the next build copies the served file: the WAL must not come with it

    with collecting() as notices:
        result = ws.build()

    assert result.success
    [said] = [n for n in notices if n.startswith(f"found {wal}")]
    assert "Not applied" in said
    [kept] = list(ws.warehouse.parent.glob(f"{ws.warehouse.name}.wal.ignored-*"))
    assert str(kept) in said
    assert not wal.exists()
    assert not has_scribble(ws.warehouse) and not has_scribble(working(ws))  # readers see the published data only
    assert figures(ws.warehouse) == published
    assert stat.S_IMODE(ws.warehouse.stat().st_mode) == 0o444


def test_a_wal_written_during_a_build_is_set_aside_by_the_publish(tmp_path):
    s = _published(tmp_path, marker=2)
    careless_writer(s.warehouse_path)
    with wh.connect_working(s) as con:
        con.execute("CREATE OR REPLACE TABLE main.marker AS SELECT 3 AS v")
    with collecting() as notices:
        wh.publish(s, background=False)
    assert any("Not applied" in n for n in notices)
    assert _marker(s.warehouse_path) == 3 and not has_scribble(s.warehouse_path)


# --------------------------------------------------------------------------- 7. honest messages


@pytest.mark.slow
def test_a_step_failing_after_the_publish_says_the_new_file_was_published(built, tmp_path, monkeypatch, capsys):
    base, expected = built
    ws = copy_workspace(base, tmp_path / "ws", monkeypatch)
    copy_sample(ws.landing, months=[NEW_MONTH])
    export_dir = ws.warehouse.parent / "export"
    shutil.rmtree(export_dir)
    export_dir.write_text("a file where the Parquet export's folder should be\n")

    result = ws.build()

    assert not result.success
    assert figures(ws.warehouse) == expected  # published all the same
    capsys.readouterr()
    status = print_run_report(settings_of(ws), result, 1.0)
    out = capsys.readouterr().out
    assert status == 1
    assert "The new warehouse WAS published" in out
    assert "What failed after the publish: serving/parquet_exports" in out
    assert "Step serving__parquet_exports failed: " in out
    assert "keeps its last good state" not in out


def test_a_failed_background_copy_is_said_and_redone_by_the_next_build(tmp_path):
    s = _published(tmp_path, marker=8, rows=200_000)
    s.working_path.unlink()
    lock = wh.working_copy_lock(s)
    lock.acquire()  # as publish does, before it hands the lock to the copy
    fd = lock.fileno()

    def small_disk():  # the copy's writes fail as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    done = subprocess.run(
        [sys.executable, "-m", "dagster_project.lib.warehouse.working_copy", "refresh", str(s.warehouse_path), str(fd)],
        cwd=PROJECT_ROOT, pass_fds=(fd,), preexec_fn=small_disk, capture_output=True, text=True,
    )
    lock.release()
    assert done.returncode == 1, done.stderr
    assert not s.working_path.exists() and not list(s.data_dir.glob("*.partial"))  # its partial copy removed

    with collecting() as notices:
        wh.ensure_working_copy(s)
    [notice] = notices
    assert "had not finished: it failed" in notice and "File too large" in notice and "Copied again" in notice
    assert _marker(s.working_path) == 8
    with collecting() as notices:
        wh.ensure_working_copy(s)
    assert notices == []  # said once


# --------------------------------------------------------------------------- helpers


def _published(tmp_path: Path, marker: int, rows: int = 1) -> Settings:
    """A served file and its working copy, as after a build: `main.marker` holds `marker`."""
    s = Settings(landing_dir=tmp_path / "landing", warehouse_path=tmp_path / "wh" / "warehouse.duckdb")
    wh.ensure_working_copy(s)
    _write_marker(s, marker, rows)
    wh.publish(s)
    wh.wait_for_working_copy(s)
    return s


