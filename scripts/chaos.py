#!/usr/bin/env python
"""Kill -9 a build at N moments; the served file must always be whole and a re-run must converge.

For every kill point (issue 7):

1. a fresh workspace: a landing directory, $WAREHOUSE_PATH and $DAGSTER_HOME of its own,
   holding the *previous good state* (a finished build of the 2024 sample files);
2. the 2025 files land, and `python -m dagster_project.cli build` (what `make run` runs)
   starts in a process group of its own;
3. at the chosen moment the whole group (the Dagster process and its dbt child) gets SIGKILL;
4. the served file must open read-only and its marts must be exactly the previous good
   state or exactly the new complete one (a clean build of the full landing), never between;
5. the build is run again: it must succeed (no stale lock, no leftover file in its way) and
   its marts must be identical to the clean build's.

Kill moments are spread over the phases: a step starting in the job's output (ingest,
dbt, quality gate, publish, the exports after it) or a dbt model or seed starting, plus a
random delay up to that phase's length in the reference run; and fixed fractions of the
measured time of that reference run (the same update, not killed; with fewer than 5 points
there are no fractions and the clean build is the reference).

A re-run whose first step waits 30 s for the `duckdb_warehouse` pool counts as BLOCKED: a
workspace runs one build at a time, so the slot belongs to the killed run (Dagster keeps it
claimed in $DAGSTER_HOME for ever). The harness then frees the dead runs' slots, as the UI's
"free slots" would, and runs again, to check the data side all the same.

    python scripts/chaos.py --points 20            # `make chaos`
    python scripts/chaos.py --points 5 --seed 7 --jobs 1 --keep

Exit status: 0 when every kill point held, 1 on any violation (the work directory is then
kept, with each build's output log).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_LANDING = PROJECT_ROOT / "data" / "landing"
SAMPLE_DIR = SAMPLE_LANDING / "exports"
MONTHLY_FILE = re.compile(r"gacc_exports_[0-9]{6}\.csv")
PREVIOUS_MONTHS = tuple(f"2024{m:02d}" for m in range(1, 13))  # the previous good state
WAREHOUSE_NAME = "warehouse.duckdb"

STEP_START = re.compile(r'STEP_START - Started execution of step "([^"]+)"')
POOL_BLOCKED = re.compile(r"Step blocked by limit for pool")
PUBLISHED = re.compile(r"serving__warehouse - published ")
# what a working directory may hold beside the served file; anything else is a leftover
EXPECTED_FILES = {WAREHOUSE_NAME, f"{WAREHOUSE_NAME}.build", f"{WAREHOUSE_NAME}.build.lock", f"{WAREHOUSE_NAME}.tmp",
                  f"{WAREHOUSE_NAME}.dbt",  # dbt's target folders (lib/settings.py)
                  "docs", "export", "quality", "report"}

PHASES = {  # Dagster step -> phase shown in the report
    "raw_customs_extracts": "ingest",
    "customs_dbt_models": "dbt",
    "quality_gate": "gate",
    "serving__warehouse": "publish",
    "serving__analyst_report": "after publish",
    "serving__dbt_docs": "after publish",
    "serving__parquet_exports": "after publish",
}


def build_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CUSTOMS_LANDING_DIR=str(root / "landing"),
        WAREHOUSE_PATH=str(root / "wh" / WAREHOUSE_NAME),
        DAGSTER_HOME=str(root / "dagster_home"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        DAGSTER_DISABLE_TELEMETRY="1",
        GX_ANALYTICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
    )
    return env


def served_path(root: Path) -> Path:
    return root / "wh" / WAREHOUSE_NAME


def monthly_sample(months=None) -> list[Path]:
    """The sample's monthly extracts by partner (gacc_exports_YYYYMM.csv), oldest first."""
    files = sorted(p for p in SAMPLE_DIR.glob("gacc_exports_*.csv") if MONTHLY_FILE.fullmatch(p.name))
    return files if months is None else [p for p in files if p.stem[-6:] in set(months)]


def copy_sample(landing: Path, months=None, reverse: bool = False, with_the_rest: bool | None = None) -> list[Path]:
    """Copy the bundled sample into a landing directory: the monthly extracts (only `months` if
    given) and, with the whole sample or `with_the_rest`, the rest of it (the revised March 2024,
    the world, province and regime downloads, the imports, the Comtrade files), as make run loads it.

    `reverse` copies the monthly extracts newest month first and gives them file times in that
    order, so a build discovers (and loads) them in the opposite order of a plain copy. The rest
    lands after them either way: a revision is published after the month it revises, and which
    of the two loads last decides the current figure.
    """
    sources = monthly_sample(months)
    if reverse:
        sources.reverse()
    if with_the_rest is None:
        with_the_rest = months is None
    if with_the_rest:
        monthly = set(monthly_sample())
        sources += [p for p in sorted(SAMPLE_LANDING.rglob("*.csv")) if p not in monthly]
    copied, base = [], time.time() - 10_000
    for i, src in enumerate(sources):
        dst = landing / src.relative_to(SAMPLE_LANDING)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        stamp = base + i  # strictly increasing in copy order
        os.utime(dst, (stamp, stamp))
        copied.append(dst)
    return copied


def land_the_rest(root: Path) -> None:
    """The update a kill point interrupts: the sample after the previous good state lands."""
    months = [p.stem[-6:] for p in monthly_sample() if p.stem[-6:] not in PREVIOUS_MONTHS]
    copy_sample(root / "landing", months=months, with_the_rest=True)


def marts_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' ORDER BY table_name"
    ).fetchall()]


def marts_hash(path: Path) -> str:
    """A content hash of every table and view in schema marts, each ordered by all its columns."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        digest = hashlib.sha256()
        for table in marts_tables(con):
            cursor = con.execute(f'SELECT * FROM marts."{table}" ORDER BY ALL')
            columns = [d[0] for d in cursor.description]
            digest.update(f"{table}{columns!r}".encode())
            while batch := cursor.fetchmany(10_000):
                digest.update(repr(batch).encode())
        return digest.hexdigest()
    finally:
        con.close()


def lineage_summary(root: Path) -> tuple[int, int]:
    """(loads in the served file, loaded months that Dagster's record of the workspace does not
    have built since their latest load)."""
    from dagster import DagsterInstance

    from dagster_project.defs.partitions import months_built_at
    from dagster_project.defs.transform.dbt_assets import MONTHLY_KEYS
    from dagster_project.lib.transform.months_to_build import latest_load_by_month, months_to_build

    con = duckdb.connect(str(served_path(root)), read_only=True)
    try:
        loads = con.execute("SELECT count(*) FROM raw.customs_loads").fetchone()[0]
        latest = latest_load_by_month(con)
    finally:
        con.close()
    with DagsterInstance.local_temp(str(root / "dagster_home")) as instance:
        return loads, len(months_to_build(latest, months_built_at(instance, MONTHLY_KEYS)))


def leftovers(root: Path) -> list[str]:
    wh = root / "wh"
    return sorted(p.name for p in wh.iterdir() if p.name not in EXPECTED_FILES) if wh.exists() else []


FREE_DEAD_RUNS = """
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
with DagsterInstance.get() as instance:
    unfinished = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]))
    for run in unfinished:
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        instance.report_run_failed(run, message="killed (scripts/chaos.py)")
    print(len(unfinished))
"""


def free_dead_runs(root: Path, python: str = sys.executable) -> int:
    """Fail the workspace's unfinished runs and free their pool slots (no build is running there)."""
    done = subprocess.run([python, "-c", FREE_DEAD_RUNS], cwd=PROJECT_ROOT, env=build_env(root),
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"could not free the dead runs' slots: {done.stderr[-500:]}")
    return int(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- a build process


def group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies waiting for init to reap them do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, _ppid, group = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError, IndexError):
            continue
        if int(group) == pgid and state not in ("Z", "X"):
            return True
    return False


def background_copies(root: Path) -> list[int]:
    """Pids of the working-copy copies a publish of this workspace started in the background."""
    served = str(root / "wh" / WAREHOUSE_NAME)
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"dagster_project.lib.warehouse.working_copy" in argv and b"refresh" in argv and served.encode() in argv:
            found.append(int(entry.name))
    return found


def wait_for_background_copy(root: Path, timeout: float = 600) -> None:
    """Block until no background copy holds the workspace's working-copy lock."""
    import fcntl

    lock = root / "wh" / f"{WAREHOUSE_NAME}.build.lock"
    if not lock.exists():
        return
    deadline = time.monotonic() + timeout
    with lock.open("rb") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the background copy in {root} still runs after {timeout:.0f} s") from None
                time.sleep(0.05)


class Build:
    """`python -m dagster_project.cli build` in a process group of its own, its output watched line by line."""

    def __init__(self, root: Path, log_name: str, python: str = sys.executable):
        self.root = root
        self.log_path = root / f"{log_name}.log"
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [python, "-u", "-m", "dagster_project.cli", "build"],
            cwd=PROJECT_ROOT, env=build_env(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.pgid = self.proc.pid  # start_new_session: the child leads its own group
        self.blocked = False
        self.killed_here = False  # the harness sent the SIGKILL (any other one came from outside)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with self.log_path.open("w", encoding="utf-8") as log:
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                now = time.monotonic() - self.started
                log.write(f"[{now:8.3f}] {line}\n")
                with self.cond:
                    self.lines.append((now, line))
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, pattern: re.Pattern, timeout: float) -> float | None:
        """Seconds since start when a line matching `pattern` appeared; None if the build ended first."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for t, line in self.lines[seen:]:
                    if pattern.search(line):
                        return t
                seen = len(self.lines)
                if not self.reader.is_alive() or time.monotonic() > deadline:
                    return None
                self.cond.wait(0.05)

    def wait_for_file(self, directory: Path, pattern: str, timeout: float) -> float | None:
        """Seconds since start when a file matching `pattern` appeared in `directory` (polled
        every millisecond); None if the build ended first."""
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            if directory.is_dir() and any(directory.glob(pattern)):
                return self.elapsed()
            time.sleep(0.001)
        return None

    def sleep_until(self, at: float) -> bool:
        """Sleep until `at` seconds after the start; False if the build ended before."""
        while True:
            left = at - self.elapsed()
            if not self.running():
                return False
            if left <= 0:
                return True
            time.sleep(min(left, 0.01))

    def kill(self) -> bool:
        """SIGKILL the whole group (the Dagster process and dbt) and the copy a publish started in
        the background (a session of its own), as a reboot would; True if the build was still running."""
        alive = self.running()
        self.killed_here = True
        if alive:  # not reaped yet, so the group id cannot belong to anyone else
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in background_copies(self.root):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        deadline = time.monotonic() + 30
        while group_alive(self.pgid):  # dbt, killed with it, may take a moment to go: wait for the group
            if time.monotonic() > deadline:
                raise RuntimeError(f"process group {self.pgid} survived SIGKILL")
            time.sleep(0.05)
        self.reader.join(10)
        return alive

    def wait(self, timeout: float, stall: float | None = None) -> int | None:
        """The exit status, or None after killing a build that did not end within `timeout` (a hang).

        With `stall`, a build whose step waits that long for a pool slot is killed too (and
        `blocked` set): a workspace runs one build at a time, so the slot is held by a dead run.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                rc = self.proc.wait(0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            stalled = stall is not None and self._stalled(stall)
            if stalled or time.monotonic() > deadline:
                self.blocked = stalled
                self.kill()
                return None
        self.reader.join(10)
        wait_for_background_copy(self.root)  # what the harness looks at next (leftovers, copies) is then settled
        return rc

    def _stalled(self, seconds: float) -> bool:
        """A step has been "blocked by limit for pool" for `seconds` without any step starting since."""
        blocked_at = None
        with self.cond:
            for when, line in self.lines:
                if blocked_at is None and POOL_BLOCKED.search(line):
                    blocked_at = when
                elif blocked_at is not None and STEP_START.search(line):
                    blocked_at = None
        return blocked_at is not None and self.elapsed() - blocked_at > seconds

    def phase_at(self, t: float) -> str:
        """The phase the build was in at `t` seconds (from the steps it had started by then)."""
        phase = "startup"
        for when, line in self.lines:
            if when > t:
                break
            if m := STEP_START.search(line):
                phase = PHASES.get(m.group(1), m.group(1))
            elif PUBLISHED.search(line):
                phase = "after publish"
        return phase

    def step_starts(self) -> dict[str, float]:
        starts: dict[str, float] = {}
        for when, line in self.lines:
            if m := STEP_START.search(line):
                starts.setdefault(m.group(1), when)
        return starts

    def died_outside(self) -> str:
        """A note for a build that died of a signal the harness did not send (e.g. someone's pkill)."""
        rc = self.proc.returncode
        return f" (signal {-rc} from outside the harness)" if rc is not None and rc < 0 and not self.killed_here else ""

    def tail(self, n: int = 25) -> str:
        return "\n".join(line for _, line in self.lines[-n:])


# --------------------------------------------------------------------------- kill points


@dataclasses.dataclass
class KillPoint:
    index: int
    kind: str  # step | dbt | file | fraction
    target: str  # step name, dbt node, file name pattern, or the fraction of the reference run's time
    delay: float  # seconds after the trigger (or since start, for a fraction)

    @property
    def label(self) -> str:
        if self.kind == "fraction":
            return f"{float(self.target):.0%} of build time"
        if self.kind == "dbt":
            return f"dbt {self.target.split('.')[-1]}"
        if self.kind == "file":
            return "working-copy copy appears"
        return f"step {PHASES.get(self.target, self.target)}"


# The order is the order points are taken in: any prefix spreads over the phases
# (3 points: ingest, dbt, publish).
# publish() renames the working copy over the served file, then a background process copies the
# served file back to this name and renames it to the working copy
PUBLISH_COPY = f"{WAREHOUSE_NAME}.build.*.partial"

PLAN: list[tuple[str, str]] = [
    ("step", "raw_customs_extracts"),
    ("dbt", "intermediate.int_customs_facts_history"),
    ("file", PUBLISH_COPY),
    ("step", "quality_gate"),
    ("fraction", "0.10"),
    ("step", "customs_dbt_models"),
    ("dbt", "marts.fct_exports_monthly"),
    ("fraction", "0.35"),
    ("step", "serving__warehouse"),
    ("step", "raw_customs_extracts"),
    ("dbt", "reference.gacc_commodities"),
    ("fraction", "0.55"),
    ("step", "quality_gate"),
    ("dbt", "marts.export_growth_monthly"),
    ("step", "serving__warehouse"),
    ("fraction", "0.75"),
    ("step", "customs_dbt_models"),
    ("step", "serving__analyst_report"),
    ("file", PUBLISH_COPY),
    ("fraction", "0.90"),
]


def phase_lengths(reference: Build) -> dict[str, float]:
    """How long each step ran in the reference build (until the next step started)."""
    starts = sorted(reference.step_starts().items(), key=lambda kv: kv[1])
    end = reference.lines[-1][0] if reference.lines else 0.0
    lengths = {}
    for i, (step, t) in enumerate(starts):
        nxt = starts[i + 1][1] if i + 1 < len(starts) else end
        lengths[step] = max(0.05, nxt - t)
    return lengths


def plan_points(n: int, seed: int, build_seconds: float, lengths: dict[str, float]) -> list[KillPoint]:
    """`build_seconds` and `lengths` (per step) are those of an un-killed run of the same update."""
    rng = random.Random(seed)
    points = []
    for i in range(n):
        kind, target = PLAN[i % len(PLAN)]
        if kind == "fraction":
            # later rounds (n > 20) shift the fraction a little
            fraction = min(0.97, max(0.02, float(target) + (i // len(PLAN)) * rng.uniform(-0.08, 0.08)))
            points.append(KillPoint(i + 1, kind, f"{fraction:.3f}", fraction * build_seconds))
        elif kind == "dbt":
            points.append(KillPoint(i + 1, kind, target, rng.uniform(0.0, 0.6)))
        elif kind == "file":  # mid-copy: the copy of a ~10 MB file takes some tens of milliseconds
            points.append(KillPoint(i + 1, kind, target, rng.uniform(0.0, 0.01)))
        else:
            span = lengths.get(target, 1.0)
            if target == "serving__warehouse":
                span = max(0.4, span * 1.5)  # publish is short: cover it and a little after
            points.append(KillPoint(i + 1, kind, target, rng.uniform(0.0, span)))
    return points


@dataclasses.dataclass
class Outcome:
    point: KillPoint
    killed: bool = False
    kill_at: float | None = None
    phase: str = "?"
    served: str = "?"  # previous | new | INCONSISTENT | UNREADABLE
    after_kill_leftovers: list[str] = dataclasses.field(default_factory=list)
    rerun: str = "?"  # ok | BLOCKED (waits for a pool slot of the killed run) | FAILED | HUNG
    freed_runs: int = 0  # dead runs whose pool slots the harness freed to diagnose a BLOCKED re-run
    rerun_rc: int | None = None
    rerun_seconds: float | None = None
    rerun_identical: bool = False
    violations: list[str] = dataclasses.field(default_factory=list)
    workdir: str = ""


class Chaos:
    stall = 30.0  # seconds a step may wait for a pool slot before the re-run counts as blocked

    def __init__(self, workdir: Path, python: str = sys.executable, timeout: float = 900, log=print):
        self.workdir = workdir
        self.python = python
        self.timeout = timeout
        self.log = log
        self.template = workdir / "template"
        self.clean_root = workdir / "clean"
        self.clean_hash: str | None = None
        self.previous_hash: str | None = None
        self.clean_seconds: float = 0.0
        self.update_seconds: float = 0.0  # an un-killed run of what a kill point interrupts
        self.update_measured = False
        self.clean_loads: int = 0
        self.lengths: dict[str, float] = {}

    # -- the two reference builds ------------------------------------------------------------
    def full_build(self, root: Path, name: str, months=None, reverse: bool = False) -> Build:
        copy_sample(root / "landing", months=months, reverse=reverse)
        build = Build(root, name, self.python)
        rc = build.wait(self.timeout)
        if rc != 0:
            raise RuntimeError(f"{name} build failed (exit {rc}), see {build.log_path}:\n{build.tail()}")
        return build

    def previous_then_update(self, measure: bool) -> Build | None:
        """Build the previous good state; with `measure`, also time the update a kill point interrupts."""
        self.full_build(self.template, "previous", PREVIOUS_MONTHS)
        if not measure:
            return None
        root = self.workdir / "update"
        shutil.copytree(self.template, root, symlinks=True)
        for log in root.glob("*.log"):
            log.unlink()
        land_the_rest(root)
        build = Build(root, "update", self.python)
        rc = build.wait(self.timeout)
        if rc != 0:
            raise RuntimeError(f"the un-killed update failed (exit {rc}), see {build.log_path}:\n{build.tail()}")
        return build

    def prepare(self, jobs: int = 2, reverse_clean: bool = False, measure_update: bool = True) -> None:
        """The reference builds: a clean build of the full landing and, beside it, the previous
        good state (2024 built) followed by an un-killed run of the update the kill points
        interrupt (2025 added), which times the fractions and must also equal the clean build.

        `reverse_clean` lands the clean build's files in reverse order (newest month loaded first).
        """
        started = time.monotonic()
        with cf.ThreadPoolExecutor(max(1, min(jobs, 2))) as pool:
            previous = pool.submit(self.previous_then_update, measure_update)
            clean = pool.submit(self.full_build, self.clean_root, "clean", None, reverse_clean)
            clean_build = clean.result()
            update = previous.result()
        self.clean_seconds = clean_build.elapsed()
        self.clean_hash = marts_hash(served_path(self.clean_root))
        self.clean_loads = lineage_summary(self.clean_root)[0]
        self.previous_hash = marts_hash(served_path(self.template))
        if self.previous_hash == self.clean_hash:
            raise RuntimeError("the previous state and the full build have the same marts: nothing to tell apart")
        reference = update or clean_build
        self.update_measured = update is not None
        self.update_seconds = reference.elapsed()
        self.lengths = phase_lengths(reference)
        if update is None and "raw_customs_extracts" in self.lengths:
            self.lengths["raw_customs_extracts"] *= 0.5  # the update ingests half the clean build's files
        self.log(f"reference builds in {time.monotonic() - started:.0f} s: clean build {self.clean_seconds:.1f} s "
                 + (f"un-killed update {self.update_seconds:.1f} s " if update else "")
                 + f"(steps: {', '.join(f'{PHASES.get(k, k)} {v:.1f}s' for k, v in self.lengths.items())}); "
                 f"clean marts {self.clean_hash[:12]}, previous marts {self.previous_hash[:12]}")
        if update is not None and marts_hash(served_path(self.workdir / "update")) != self.clean_hash:
            raise RuntimeError("an un-killed update does not reproduce the clean build's marts: nothing else can be checked")

    @property
    def rerun_timeout(self) -> float:
        # a re-run does at most what the clean build did: far longer means it waits on something
        return min(self.timeout, max(240.0, 4 * self.clean_seconds))

    # -- one kill point ----------------------------------------------------------------------
    def run_point(self, point: KillPoint) -> Outcome:
        root = self.workdir / f"point{point.index:02d}"
        out = Outcome(point, workdir=str(root))
        shutil.copytree(self.template, root, symlinks=True)
        for log in root.glob("*.log"):
            log.unlink()
        land_the_rest(root)

        build = Build(root, "killed", self.python)
        try:
            if point.kind == "fraction":
                trigger = 0.0
            elif point.kind == "step":
                trigger = build.wait_for(re.compile(rf'STEP_START - Started execution of step "{re.escape(point.target)}"'),
                                         self.timeout)
            elif point.kind == "file":  # poll the directory only once publish has started
                publish = build.wait_for(re.compile('STEP_START - Started execution of step "serving__warehouse"'),
                                         self.timeout)
                trigger = None if publish is None else build.wait_for_file(root / "wh", point.target, self.timeout)
            else:
                trigger = build.wait_for(re.compile(rf"^\d+ of \d+ START .* {re.escape(point.target)} "), self.timeout)
            if trigger is not None and build.sleep_until(trigger + point.delay):
                out.kill_at = build.elapsed()
                out.killed = build.kill()
            else:
                build.wait(self.timeout)
        finally:
            if build.running():
                build.kill()
        if out.killed:
            out.phase = build.phase_at(out.kill_at)
        else:
            out.phase = "not killed (build ended first)"
            if build.proc.returncode != 0:
                out.violations.append(f"the un-killed build failed (exit {build.proc.returncode}){build.died_outside()}")
        out.after_kill_leftovers = leftovers(root)

        # the served file: the previous good state or the new complete one, nothing between
        try:
            served = marts_hash(served_path(root))
            out.served = {self.previous_hash: "previous", self.clean_hash: "new"}.get(served, "INCONSISTENT")
        except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
            out.served = "UNREADABLE"
            out.violations.append(f"served file unreadable after the kill: {exc}")
        if out.served == "INCONSISTENT":
            out.violations.append("served marts are neither the previous good state nor the new complete one")

        # the re-run converges to a clean build
        rerun = Build(root, "rerun", self.python)
        out.rerun_rc = rerun.wait(self.rerun_timeout, stall=self.stall)
        out.rerun_seconds = rerun.elapsed()
        if rerun.blocked:
            out.rerun = "BLOCKED"
            out.violations.append(
                f"re-run blocked: its first step waited {self.stall:.0f} s for the duckdb_warehouse pool slot the killed "
                "run still holds in $DAGSTER_HOME (it would wait forever)")
            # Diagnose the data side anyway: free the dead runs' slots (the UI's "free slots") and run again.
            out.freed_runs = free_dead_runs(root, self.python)
            rerun = Build(root, "rerun2", self.python)
            out.rerun_rc = rerun.wait(self.rerun_timeout, stall=self.stall)
            out.rerun_seconds = rerun.elapsed()
        if out.rerun_rc is None:
            out.rerun = "BLOCKED" if rerun.blocked else "HUNG"
            out.violations.append(f"re-run {'blocked' if rerun.blocked else 'hung'} ({rerun.log_path})")
        elif out.rerun_rc != 0:
            out.rerun = "FAILED"
            out.violations.append(f"re-run failed (exit {out.rerun_rc}){rerun.died_outside()}, see {rerun.log_path}: "
                                  + rerun.tail(8).replace("\n", " | ")[-600:])
        else:
            if out.rerun == "?":
                out.rerun = "ok"
            try:
                out.rerun_identical = marts_hash(served_path(root)) == self.clean_hash
                loads, unbuilt = lineage_summary(root)
            except Exception as exc:  # noqa: BLE001
                out.violations.append(f"served file unreadable after the re-run: {exc}")
            else:
                if not out.rerun_identical:
                    out.violations.append("re-run marts differ from the clean build's")
                if loads != self.clean_loads or unbuilt:
                    out.violations.append(f"re-run lineage: {loads} loads (clean build: {self.clean_loads}), {unbuilt} month(s) not built")
            left = [name for name in leftovers(root) if name != f"{WAREHOUSE_NAME}.build.wal"]
            if left:
                out.violations.append(f"files left after the re-run: {', '.join(left)}")
        return out


def summary_table(outcomes: list[Outcome]) -> str:
    headers = ["#", "trigger", "delay s", "killed at s", "phase at kill", "served after kill",
               "left after kill", "re-run", "re-run s", "identical to clean", "verdict"]
    rows = []
    for o in sorted(outcomes, key=lambda o: o.point.index):
        rows.append([
            str(o.point.index), o.point.label, f"{o.point.delay:.2f}",
            f"{o.kill_at:.2f}" if o.kill_at is not None else "-", o.phase, o.served,
            ", ".join(n.replace(WAREHOUSE_NAME, "wh") for n in o.after_kill_leftovers) or "-",
            o.rerun + (" (slots freed, then ok)" if o.freed_runs and o.rerun_rc == 0 else ""),
            f"{o.rerun_seconds:.0f}" if o.rerun_seconds is not None else "-",
            "yes" if o.rerun_identical else "NO",
            "ok" if not o.violations else "VIOLATION",
        ])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *map(fmt, rows)])


@dataclasses.dataclass
class Report:
    outcomes: list[Outcome]
    clean_hash: str
    previous_hash: str
    clean_seconds: float
    update_seconds: float | None  # None: not measured (no fraction points)
    seconds: float
    workdir: Path

    @property
    def violations(self) -> list[str]:
        return [f"point {o.point.index} ({o.point.label}, {o.phase}): {v}" for o in self.outcomes for v in o.violations]

    def summary(self) -> str:
        n = len(self.outcomes)
        killed = sum(o.killed for o in self.outcomes)
        consistent = sum(o.served in ("previous", "new") for o in self.outcomes)
        identical = sum(o.rerun_identical for o in self.outcomes)
        blocked = sum(o.rerun == "BLOCKED" for o in self.outcomes)
        phases: dict[str, int] = {}
        for o in self.outcomes:
            phases[o.phase] = phases.get(o.phase, 0) + 1
        lines = [
            summary_table(self.outcomes),
            "",
            f"{n} kill point(s), {killed} killed mid-build; phases: "
            + ", ".join(f"{k} {v}" for k, v in sorted(phases.items())),
            f"served file consistent after the kill: {consistent}/{n} "
            f"(previous {sum(o.served == 'previous' for o in self.outcomes)}, new {sum(o.served == 'new' for o in self.outcomes)})",
            f"re-runs that succeeded on their own: {sum(o.rerun == 'ok' for o in self.outcomes)}/{n}"
            + (f" (blocked by a dead run's pool slot: {blocked}; identical after freeing it: "
               f"{sum(o.rerun == 'BLOCKED' and o.rerun_identical for o in self.outcomes)})" if blocked else ""),
            f"re-run marts identical to a clean build: {identical}/{n}",
            f"clean build {self.clean_seconds:.1f} s"
            + (f", un-killed update {self.update_seconds:.1f} s" if self.update_seconds is not None else "")
            + f"; whole run {self.seconds / 60:.1f} min; work dir {self.workdir}",
        ]
        if self.violations:
            lines += ["", "VIOLATIONS:", *(f"  - {v}" for v in self.violations)]
        return "\n".join(lines)


def run_chaos(points: int, seed: int, jobs: int = 1, workdir: Path | None = None, reverse_clean: bool = False,
              python: str = sys.executable, timeout: float = 900, log=print) -> Report:
    """Prepare the reference builds, then run `points` kill points, `jobs` at a time."""
    started = time.monotonic()
    workdir = Path(workdir or tempfile.mkdtemp(prefix="chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    chaos = Chaos(workdir, python=python, timeout=timeout, log=log)
    plan_kinds = {PLAN[i % len(PLAN)][0] for i in range(points)}
    chaos.prepare(jobs=jobs, reverse_clean=reverse_clean, measure_update="fraction" in plan_kinds)
    plan = plan_points(points, seed, chaos.update_seconds, chaos.lengths)
    outcomes: list[Outcome] = []
    with cf.ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = {pool.submit(chaos.run_point, p): p for p in plan}
        for future in cf.as_completed(futures):
            point = futures[future]
            try:
                o = future.result()
            except Exception as exc:  # noqa: BLE001 - a harness error is reported like a violation
                o = Outcome(point, violations=[f"harness error: {exc!r}"])
            outcomes.append(o)
            log(f"point {point.index:2d} {point.label:<30} delay {point.delay:6.2f}s  phase {o.phase:<14} "
                f"served {o.served:<9} re-run {o.rerun} {'identical' if o.rerun_identical else 'DIFFERENT'}"
                + (f"  VIOLATION: {'; '.join(o.violations)}" if o.violations else ""))
    return Report(outcomes, chaos.clean_hash, chaos.previous_hash, chaos.clean_seconds,
                  chaos.update_seconds if chaos.update_measured else None,
                  time.monotonic() - started, workdir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=20, help="kill points (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the delays (default: random, printed)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="kill points run side by side")
    parser.add_argument("--workdir", type=Path, help="where the workspaces go (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory even when everything held")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a build counts as hung")
    parser.add_argument("--json", type=Path, help="write the outcomes as JSON here")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    print(f"chaos: {args.points} kill point(s), seed {seed}, {args.jobs} at a time", flush=True)
    report = run_chaos(args.points, seed, jobs=args.jobs, workdir=args.workdir, timeout=args.timeout,
                       log=lambda msg: print(msg, flush=True))
    print()
    print(report.summary())
    if args.json:
        args.json.write_text(json.dumps({
            "seed": seed, "clean_hash": report.clean_hash, "previous_hash": report.previous_hash,
            "clean_seconds": report.clean_seconds, "update_seconds": report.update_seconds, "seconds": report.seconds,
            "outcomes": [dataclasses.asdict(o) for o in report.outcomes], "violations": report.violations,
        }, indent=2, default=str))
    if report.violations or args.keep:
        print(f"work directory kept: {report.workdir}")
    else:
        shutil.rmtree(report.workdir, ignore_errors=True)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
