"""Landing files that are not what they seem: only settled, regular, readable files are read.

Each test is a case users met: a download still being written when `make run` started (it
was loaded part-way, as a release), a file replaced between its hash and its read (stored
under the old content's hash), a FIFO (the build hung) or a device (100% CPU), a file or
folder the build may not read (silently missing, or a crash), a file of thousands of repeated
keys (a 79,234-character reason). Everything is real: files, FIFOs, sockets, device nodes
and permissions on disk, a writer process, the ingest on a DuckDB working copy, Dagster builds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from dagster_project.lib.ingest import staged_csv
from dagster_project.lib.ingest.batch import BatchLoader
from dagster_project.lib.ingest.landing import ingest_landing
from dagster_project.lib.ingest.landing_hashes import LandingHashes
from dagster_project.lib.ingest.report import MAX_REASON_CHARS
from dagster_project.lib.ingest.settling import DEFAULT_SETTLE_SECONDS
from dagster_project.lib.settings import PROJECT_ROOT, Settings
from dagster_project.lib.warehouse.working_copy import ensure_working_copy
from gacc_files import SAMPLE_DIR, copy_sample, magnet_row, render_extract, write_bytes, write_extract

TODAY = dt.date(2026, 1, 15)
TARGET = "exports/magnets_202506.csv"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def gate(tmp_path):
    settings = Settings(landing_dir=tmp_path / "landing", warehouse_path=tmp_path / "wh" / "warehouse.duckdb")
    (settings.landing_dir / "exports").mkdir(parents=True)
    ensure_working_copy(settings)
    con = duckdb.connect(str(settings.working_path))
    yield settings, con
    con.close()


def ingest(settings: Settings, con, **options):
    return ingest_landing(con, settings.landing_dir, settings.staging_dir, today=TODAY, **options)


def ingest_metadata(result) -> dict:
    """The ingest asset's metadata (raw/customs_rows) of a build, values unwrapped."""
    [event] = [e for e in result.get_asset_materialization_events()
               if e.asset_key.path == ["raw", "customs_rows"]]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


# -- a download still being written ------------------------------------------------------------------

_WRITER = textwrap.dedent("""
    import sys, time
    source, target, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(source, "rb") as src, open(target, "wb") as out:
        for line in src:
            out.write(line)
            out.flush()
            time.sleep(pause)
""")


@pytest.mark.slow
def test_a_download_being_written_during_a_build_is_deferred_then_loaded_whole(workspace, monkeypatch, capsys):
    """A tool writes a download line by line (curl, a copy from a share: no temporary name) while
    `make run` starts. The build leaves it for the next run instead of loading the lines so far."""
    monkeypatch.setenv("CUSTOMS_SETTLE_SECONDS", str(DEFAULT_SETTLE_SECONDS))  # the default, whatever the suite sets
    copy_sample(workspace.landing, months=["202510", "202511"])
    source = SAMPLE_DIR / "gacc_exports_202512.csv"  # 204 rows
    target = workspace.landing / "exports" / "gacc_exports_202512.csv"
    # 0.15 s a line: 30 s for the file, far longer than the build takes to reach its ingest and
    # watch the file (a few seconds); the build's other runs go on after the writer is done
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(source), str(target), "0.15"])
    try:
        deadline = time.monotonic() + 30
        while (not target.exists() or target.read_bytes().count(b"\n") < 20) and time.monotonic() < deadline:
            time.sleep(0.05)
        first = workspace.build()
    finally:
        assert writer.wait(timeout=120) == 0
    assert first.success
    assert workspace.scalar("SELECT count(*) FROM raw.customs_loads WHERE file_path = $p",
                            {"p": "exports/gacc_exports_202512.csv"}, working=True) == 0
    assert workspace.query("SELECT file_path, reason FROM audit.rejected_files", working=True) == []
    meta = ingest_metadata(first)
    assert meta["files_deferred_to_next_run"] == 1 and meta["files_loaded_this_run"] == 2
    assert "exports/gacc_exports_202512.csv" in meta["deferred"] and "still being written" in meta["deferred"]
    # what `make run` prints: the file waits for the next run; not a rejection, exit 0
    from dagster_project.lib.serving.run_report import print_run_report
    from dagster_project.lib.settings import Settings

    assert print_run_report(Settings(landing_dir=workspace.landing, warehouse_path=workspace.warehouse), first, 0.0) == 0
    printed = capsys.readouterr().out
    assert "Deferred to the next run (1)" in printed and "exports/gacc_exports_202512.csv: " in printed

    second = workspace.build()
    assert second.success
    assert ingest_metadata(second)["files_loaded_this_run"] == 1
    loads = workspace.query("SELECT file_sha256, row_count FROM raw.customs_loads WHERE file_path = $p",
                            {"p": "exports/gacc_exports_202512.csv"})
    assert loads == [(sha256(source.read_bytes()), 204)]  # one load, the whole file, its first release
    assert workspace.scalar("SELECT count(*) FROM raw.customs_rows WHERE source_file = $p",
                            {"p": "exports/gacc_exports_202512.csv"}) == 204


def test_a_file_still_changing_within_the_settle_interval_is_deferred(gate, monkeypatch):
    """The settle interval itself, without a build around it: a file appended to during it waits."""
    settings, con = gate
    monkeypatch.setenv("CUSTOMS_SETTLE_SECONDS", "1.5")
    rows = [magnet_row("202506", str(p), 100 + p, 1000 + p) for p in range(101, 161)]  # 6 s of writing
    data = render_extract(rows)
    target = settings.landing_dir / TARGET
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, "/dev/stdin", str(target), "0.1"], stdin=subprocess.PIPE)
    writer.stdin.write(data)
    writer.stdin.close()
    while not target.exists() or target.stat().st_size == 0:
        time.sleep(0.02)
    started = time.monotonic()
    report = ingest(settings, con)
    assert writer.poll() is None, "the writer finished before the ingest watched the file"
    assert time.monotonic() - started < 10
    assert report.loaded == [] and report.rejected == []
    assert [d.file_path for d in report.deferred] == [TARGET]
    assert "changed within the 1.5 s settle interval" in report.deferred[0].reason
    writer.wait(timeout=30)
    again = ingest(settings, con)
    assert [(r.file_path, r.row_count) for r in again.loaded] == [(TARGET, 60)]
    assert con.execute("SELECT file_sha256 FROM raw.customs_loads").fetchall() == [(sha256(data),)]


def test_files_written_long_ago_are_not_waited_for(gate, monkeypatch):
    settings, con = gate
    monkeypatch.setenv("CUSTOMS_SETTLE_SECONDS", "30")
    write_extract(settings.landing_dir / TARGET, [magnet_row("202506", "502", 1000, 50_000)], mtime=time.time() - 60)
    started = time.monotonic()
    report = ingest(settings, con)
    assert time.monotonic() - started < 10 and report.settle_wait_seconds == 0
    assert [r.file_path for r in report.loaded] == [TARGET]


# -- temporary download names ------------------------------------------------------------------------------

@pytest.mark.slow
def test_temporary_download_names_are_skipped_and_loaded_once_renamed(workspace):
    """Browsers write under a temporary name and rename when done; Firefox also creates the final
    name, empty, beside its .part file. None of it is read, and none of it is a rejection."""
    copy_sample(workspace.landing, months=["202510"])
    exports = workspace.landing / "exports"
    nov, dec = (SAMPLE_DIR / f"gacc_exports_2025{m}.csv" for m in ("11", "12"))
    write_bytes(exports / "gacc_exports_202511.csv.crdownload", nov.read_bytes())  # Chrome, done but not renamed
    write_bytes(exports / "gacc_exports_202512.csv.part", dec.read_bytes()[:3000])  # Firefox, mid-download
    write_bytes(exports / "gacc_exports_202512.csv", b"")  # ... and its placeholder under the final name
    write_bytes(exports / "~$notes.csv", b"owner file of an open workbook")  # Office
    write_bytes(exports / "gacc_exports_202509.csv.download" / "gacc_exports_202509.csv", b"partial")  # Safari

    first = workspace.build()
    assert first.success
    assert workspace.query("SELECT file_path FROM raw.customs_loads", working=True) == [("exports/gacc_exports_202510.csv",)]
    assert workspace.query("SELECT file_path, reason FROM audit.rejected_files", working=True) == []
    meta = ingest_metadata(first)
    assert meta["files_skipped_temporary"] == 4
    for name in ("gacc_exports_202511.csv.crdownload", "gacc_exports_202512.csv.part", "~$notes.csv",
                 "gacc_exports_202509.csv.download"):
        assert name in meta["temporary_downloads_skipped"]
    assert meta["files_deferred_to_next_run"] == 1
    assert "gacc_exports_202512.csv.part is beside it" in meta["deferred"]

    # the downloads finish: the browsers rename their files
    os.replace(exports / "gacc_exports_202511.csv.crdownload", exports / "gacc_exports_202511.csv")
    write_bytes(exports / "gacc_exports_202512.csv.part", dec.read_bytes())
    os.replace(exports / "gacc_exports_202512.csv.part", exports / "gacc_exports_202512.csv")
    second = workspace.build()
    assert second.success
    rows = lambda path: path.read_bytes().count(b"\n") - 1  # noqa: E731 (the header aside)
    assert workspace.query("SELECT file_path, row_count FROM raw.customs_loads ORDER BY file_path") == [
        ("exports/gacc_exports_202510.csv", rows(SAMPLE_DIR / "gacc_exports_202510.csv")),
        ("exports/gacc_exports_202511.csv", rows(nov)),
        ("exports/gacc_exports_202512.csv", 204),
    ]
    assert workspace.query("SELECT file_path, reason FROM audit.rejected_files") == []
    assert ingest_metadata(second)["files_skipped_temporary"] == 2  # Safari's folder and Office's file are still there


def test_the_landing_sensor_asks_for_finished_downloads_only(workspace):
    from dagster import DagsterInstance, build_sensor_context

    from dagster_project.defs.sensors import landing_files_sensor

    copy_sample(workspace.landing, months=["202505"])
    exports = workspace.landing / "exports"
    write_bytes(exports / "gacc_exports_202506.csv.crdownload", b"partial")
    os.mkfifo(exports / "pipe_202506.csv")  # stat'ed, never opened: the ingest refuses it with a reason
    with DagsterInstance.ephemeral() as instance:
        (request,) = list(landing_files_sensor(build_sensor_context(instance=instance)))
    files = request.run_config["ops"]["raw_customs_extracts"]["config"]["files"]
    assert files == ["exports/gacc_exports_202505.csv", "exports/pipe_202506.csv"]


# -- a file replaced between its hash and its read ---------------------------------------------------------

def _swap_at(point: str, monkeypatch, do_swap) -> None:
    """Replace the landing file at one point of the ingest, by wrapping the step that comes before it.

    Simulated: a downloader renaming its finished file over the old one can do so at any moment;
    the test picks the moment by doing the rename itself, right after the ingest's own step.
    """
    if point == "after_hash":
        real = LandingHashes.sha256

        def hashed_then_swapped(self, lf):
            sha = real(self, lf)
            do_swap()
            return sha
        monkeypatch.setattr(LandingHashes, "sha256", hashed_then_swapped)
    elif point == "after_staging":  # the batch path: transcoded and staged, not yet inserted
        real_prepare = BatchLoader.prepare

        def prepared_then_swapped(self, candidates):
            ready = real_prepare(self, candidates)
            do_swap()
            return ready
        monkeypatch.setattr(BatchLoader, "prepare", prepared_then_swapped)
    elif point == "after_read":  # the per-file gate: read and staged, not yet validated and committed
        real_transcode = staged_csv.transcode_to_utf8

        def read_then_swapped(src, dst):
            shape = real_transcode(src, dst)
            do_swap()
            return shape
        monkeypatch.setattr(staged_csv, "transcode_to_utf8", read_then_swapped)


@pytest.mark.parametrize("point, batch", [("after_hash", True), ("after_hash", False), ("after_staging", True),
                                          ("after_read", False)])
def test_a_file_replaced_while_it_is_read_is_deferred_and_never_stored_under_another_hash(gate, monkeypatch, point, batch):
    settings, con = gate
    monkeypatch.setenv("CUSTOMS_SETTLE_SECONDS", "0")  # old files: the settle interval has nothing to say
    old = render_extract([magnet_row("202506", "502", 1000, 50_000)])
    new = render_extract([magnet_row("202506", "502", 2000, 90_000), magnet_row("202506", "116", 10, 500)])
    target = settings.landing_dir / TARGET
    write_bytes(target, old, mtime=time.time() - 60)
    incoming = settings.landing_dir / "incoming.tmp"  # where the downloader writes before renaming

    def swap() -> None:
        if not incoming.exists():
            write_bytes(incoming, new, mtime=time.time() - 30)
            os.replace(incoming, target)
            swapped.append(point)
    swapped: list[str] = []
    with monkeypatch.context() as hook:
        _swap_at(point, hook, swap)
        first = ingest(settings, con, batch=batch)
    assert swapped == [point]
    assert first.loaded == [] and first.rejected == []
    assert [d.file_path for d in first.deferred] == [TARGET]
    assert "changed" in first.deferred[0].reason and "next run" in first.deferred[0].reason
    assert con.execute("SELECT count(*) FROM raw.customs_rows").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM audit.rejected_files").fetchone()[0] == 0

    second = ingest(settings, con, batch=batch)
    assert [r.file_path for r in second.loaded] == [TARGET]
    # the next run reads what is there, and records the hash of exactly those bytes
    assert con.execute("SELECT file_sha256, row_count, file_size_bytes FROM raw.customs_loads").fetchall() == [
        (sha256(new), 2, len(new))]
    assert sorted(r[0] for r in con.execute("SELECT quantity FROM raw.customs_rows").fetchall()) == [10, 2000]

    # the old content put back is a release of its own, read again
    write_bytes(target, old, mtime=time.time() - 10)
    third = ingest(settings, con, batch=batch)
    assert [r.file_path for r in third.loaded] == [TARGET]
    assert con.execute("SELECT file_sha256, row_count FROM raw.customs_loads ORDER BY load_seq").fetchall() == [
        (sha256(new), 2), (sha256(old), 1)]
    assert con.execute(
        "SELECT DISTINCT file_sha256 FROM raw.customs_rows WHERE quantity = 1000").fetchall() == [(sha256(old),)]


# -- not regular files: refused unopened -----------------------------------------------------------------

_INGEST = textwrap.dedent("""
    import datetime as dt, json, sys
    from pathlib import Path
    import duckdb
    from dagster_project.lib.ingest.landing import ingest_landing
    from dagster_project.lib.ingest.refusals import rejection_stands
    from dagster_project.lib.settings import Settings
    from dagster_project.lib.warehouse.working_copy import ensure_working_copy

    settings = Settings(landing_dir=Path(sys.argv[1]), warehouse_path=Path(sys.argv[2]))
    ensure_working_copy(settings)
    con = duckdb.connect(str(settings.working_path))
    report = ingest_landing(con, settings.landing_dir, settings.staging_dir, today=dt.date(2026, 1, 15))
    audit = con.execute("SELECT file_path, file_sha256, reason FROM audit.rejected_files ORDER BY 1").fetchall()
    con.close()
    print(json.dumps({
        "loaded": sorted(r.file_path for r in report.loaded),
        "rejected": {r.file_path: [r.file_sha256, r.reason] for r in report.rejected},
        "deferred": {d.file_path: d.reason for d in report.deferred},
        "audit": audit,
        "stands": {path: rejection_stands(settings.landing_dir, path, sha) for path, sha, _ in audit},
    }))
""")


def ingest_in_subprocess(settings: Settings, prefix: list[str] = (), timeout: float = 120) -> dict:
    """The ingest in a process of its own: a hang (a FIFO opened) fails the test instead of the suite."""
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", _INGEST, str(settings.landing_dir), str(settings.warehouse_path)],
                              cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "CUSTOMS_SETTLE_SECONDS": "0"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"the ingest did not finish in {timeout} s: it blocked on (or kept reading) a landing entry")
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def plain(tmp_path) -> Settings:
    settings = Settings(landing_dir=tmp_path / "landing", warehouse_path=tmp_path / "wh" / "warehouse.duckdb")
    write_extract(settings.landing_dir / "exports" / "good_202506.csv", [magnet_row("202506", "502", 1000, 50_000)],
                  mtime=time.time() - 60)
    return settings


def test_fifos_sockets_and_devices_are_refused_without_being_opened(plain, monkeypatch):
    exports = plain.landing_dir / "exports"
    os.mkfifo(exports / "pipe_202506.csv")  # opened, it would block the build for ever
    os.symlink("pipe_202506.csv", exports / "link_to_pipe_202506.csv")  # a link inside the landing dir
    monkeypatch.chdir(exports)  # a socket's path is limited to 108 bytes: bind the short relative name
    server = socket.socket(socket.AF_UNIX)
    server.bind("socket_202506.csv")
    try:
        os.mknod(exports / "zero_202506.csv", 0o666 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's numbers
        device = "exports/zero_202506.csv"
    except PermissionError:  # no CAP_MKNOD here: a link to the real device instead
        os.symlink("/dev/zero", exports / "zero_202506.csv")
        device = None
    os.symlink("/dev/zero", exports / "devzero_202506.csv")  # read, it never ends

    started = time.monotonic()
    try:
        result = ingest_in_subprocess(plain, timeout=90)
    finally:
        server.close()
    assert time.monotonic() - started < 60
    assert result["loaded"] == ["exports/good_202506.csv"]
    reasons = {path: reason for path, (sha, reason) in result["rejected"].items()}
    assert all(sha is None for sha, _ in result["rejected"].values())  # not a byte read, not even to hash
    assert "a named pipe (FIFO), not a regular file: refused without opening it" in reasons["exports/pipe_202506.csv"]
    assert "a named pipe (FIFO)" in reasons["exports/link_to_pipe_202506.csv"]
    assert "a socket, not a regular file" in reasons["exports/socket_202506.csv"]
    assert "outside the landing directory" in reasons["exports/devzero_202506.csv"]
    if device:
        assert "a character device, not a regular file" in reasons[device]
    assert len(reasons) == 5
    # recorded like any other rejection, and still standing while the entries are there
    assert {path for path, _, _ in result["audit"]} == set(reasons)
    assert all(result["stands"].values())


# -- files and folders the build may not read --------------------------------------------------------------

@pytest.fixture
def unprivileged(tmp_path) -> list[str]:
    """A command prefix under which file permissions apply to the ingest.

    Root reads any file whatever its mode (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): dropping those
    two capabilities from the bounding set makes root a plain owner, so the test's own files
    (root's, mode 0700 folders) stay usable. Switching to `nobody` (setpriv --reuid) would need
    the whole temp tree and the project opened to others; it is not used.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): cannot drop root's permission bypass")
    prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    probe = tmp_path / "probe"
    probe.write_text("secret")
    probe.chmod(0)
    try:
        works = subprocess.run([*prefix, "true"]).returncode == 0
        denied = subprocess.run([*prefix, "cat", str(probe)], capture_output=True).returncode != 0
    finally:
        probe.unlink()
    if not (works and denied):
        pytest.skip("running as root, and setpriv cannot drop CAP_DAC_OVERRIDE here (no CAP_SETPCAP?): "
                    "root would read the unreadable files")
    return prefix


def test_unreadable_files_and_folders_are_rejections_and_the_rest_loads(plain, unprivileged):
    exports = plain.landing_dir / "exports"
    locked = write_extract(exports / "locked_202507.csv", [magnet_row("202507", "502", 1, 1)], mtime=time.time() - 60)
    sealed = exports / "sealed"  # no permission at all: cannot be listed
    write_extract(sealed / "inner_202508.csv", [magnet_row("202508", "502", 1, 1)], mtime=time.time() - 60)
    unsearchable = exports / "unsearchable"  # listed, but its files cannot be reached (no x)
    write_extract(unsearchable / "inner_202509.csv", [magnet_row("202509", "502", 1, 1)], mtime=time.time() - 60)
    locked.chmod(0)
    sealed.chmod(0)
    unsearchable.chmod(0o644)
    try:
        result = ingest_in_subprocess(plain, unprivileged)
    finally:
        locked.chmod(0o644)
        sealed.chmod(0o755)
        unsearchable.chmod(0o755)

    assert result["loaded"] == ["exports/good_202506.csv"]  # the ingest of the other files goes on
    assert result["deferred"] == {}
    rejected = result["rejected"]
    assert set(rejected) == {"exports/locked_202507.csv", "exports/sealed", "exports/unsearchable/inner_202509.csv"}
    for path, (sha, reason) in rejected.items():
        assert sha is None and "Permission denied" in reason, (path, reason)
    assert rejected["exports/locked_202507.csv"][1].startswith(
        "cannot read the file (Permission denied, mode ----------): the user running the build needs read permission")
    assert rejected["exports/sealed"][1].startswith("cannot read the folder (Permission denied): the user running the "
                                                    "build needs read and search permission (r and x) on it")
    assert rejected["exports/sealed"][1].endswith("none of the files in it are loaded")
    assert rejected["exports/unsearchable/inner_202509.csv"][1].startswith(
        "cannot reach the file (Permission denied): its folder exports/unsearchable/ can be listed but not entered")
    assert [(p, r) for p, _, r in result["audit"]] == sorted((p, r) for p, (_, r) in rejected.items())
    assert all(result["stands"].values())

    # permissions fixed: the same build user reads everything, and the refusals no longer stand
    after = ingest_in_subprocess(plain, unprivileged)
    assert after["loaded"] == ["exports/locked_202507.csv", "exports/sealed/inner_202508.csv",
                               "exports/unsearchable/inner_202509.csv"]
    assert after["rejected"] == {} and not any(after["stands"].values())


# -- bounded reasons -------------------------------------------------------------------------------

def test_thousands_of_duplicate_keys_give_a_short_reason(gate):
    settings, con = gate
    rows = ([magnet_row("202506", "502", 1000, 50_000)] * 5000 + [magnet_row("202506", "116", 1, 1)] * 2
            + [magnet_row("202506", "304", 1, 1)] * 3)
    write_extract(settings.landing_dir / TARGET, rows, mtime=time.time() - 60)
    report = ingest(settings, con)
    [rejection] = report.rejected
    reason = rejection.reason
    assert reason.startswith("duplicate key: rows 1, 2, 3, 4, 5 (lines 2, 3, 4, 5, 6) and 4,995 more row(s) repeat "
                             "('数据年月', '商品编码', '贸易伙伴编码') = (202506, 85051110, 502)")
    assert "2 other key(s) repeat too (5 rows)" in reason
    assert len(reason) < 400
    assert con.execute("SELECT reason FROM audit.rejected_files").fetchall() == [(reason,)]


def test_a_huge_bad_value_is_quoted_short(gate):
    settings, con = gate
    rows = [magnet_row("202506", str(100 + i), 1, 1, hs8="x" * 100_000 if i < 7 else "85051110") for i in range(9)]
    write_extract(settings.landing_dir / TARGET, rows, mtime=time.time() - 60)
    [rejection] = ingest(settings, con).rejected
    reason = rejection.reason
    assert "commodity codes must be 8 digits" in reason and "row 5 (line 6)" in reason and "row 6" not in reason
    assert "and 2 more row(s)" in reason and "(100,000 characters)" in reason
    assert len(reason) < MAX_REASON_CHARS


# -- what `make run` says ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_make_run_lists_a_fifo_and_an_unreadable_folder_and_exits_1(plain, unprivileged, tmp_path):
    exports = plain.landing_dir / "exports"
    os.mkfifo(exports / "pipe_202506.csv")
    sealed = exports / "sealed"
    write_extract(sealed / "inner_202508.csv", [magnet_row("202508", "502", 1, 1)], mtime=time.time() - 60)
    sealed.chmod(0)
    env = {**os.environ, "CUSTOMS_LANDING_DIR": str(plain.landing_dir), "WAREHOUSE_PATH": str(plain.warehouse_path),
           "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    try:
        done = subprocess.run([*unprivileged, sys.executable, "-m", "dagster_project.cli", "build"], cwd=PROJECT_ROOT,
                              env=env, capture_output=True, text=True, timeout=900)
    finally:
        sealed.chmod(0o755)
    output = done.stdout + done.stderr
    assert "Rejected files (2)" in done.stdout, output[-5000:]
    assert "  - exports/pipe_202506.csv: a named pipe (FIFO), not a regular file" in done.stdout
    assert "  - exports/sealed: cannot read the folder (Permission denied" in done.stdout
    assert done.returncode == 1
    # the good file loaded and was published; the check that every landing file loaded did not pass over them
    con = duckdb.connect(str(plain.warehouse_path), read_only=True)
    try:
        assert con.execute("SELECT file_path FROM raw.customs_loads").fetchall() == [("exports/good_202506.csv",)]
        assert con.execute("SELECT passed, observed FROM audit.check_results "
                           "WHERE check_name = 'all_landing_files_loaded'").fetchall()[0][0] is False
    finally:
        con.close()
