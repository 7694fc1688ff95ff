#!/usr/bin/env python3
"""The benchmark (issue 6): the project build against a hand-written DuckDB floor, in one run.

    python bench/run.py                       # BENCH_SCALE=default: ~10 min on 2 cores (7 CLI builds)
    BENCH_SCALE=full python bench/run.py      # 10 years of all ~8,957 HS8 codes (~50M rows)

Scales (BENCH_SCALE): tiny, default, medium, full; see SCALES. Everything it writes goes to
bench/out/<scale>/ (git-ignored); the dated results are appended to bench/RESULTS.md
(BENCH_NO_RESULTS=1 to skip) and written to bench/out/<scale>/results.json.
BENCH_SKIP=incremental,sample,ingest,checks leaves measurements out (for quick iterations);
BENCH_HISTORY=10 (comma list) overrides the scale's history lengths for (d).

Measured, in order:
  (a) baseline   bench/baseline.py on the main data set: wall time, peak RSS
  (b) build      `python -m dagster_project.cli build` on the same files, with
                 CUSTOMS_LANDING_DIR / WAREHOUSE_PATH / DAGSTER_HOME in bench/out/<scale>/:
                 wall time, peak RSS of the process tree, per-step durations from the
                 CLI output, dbt's per-node times (run_results.json); the marts are
                 compared with the baseline's
  (f) checks     the quality_gate step of (b), and each check's own seconds from the
                 run's event log (BENCH_PROBE_CHECKS=1: each population query re-timed)
  (c) ingest     rows/s of the raw_customs_extracts step of (b) vs DuckDB's read_csv on
                 the same rows as UTF-8; plus ingest_landing alone on a set of full
                 10,000-row files vs read_csv on them, with a breakdown by statement, and
                 the same files with batching off (every file through the per-file gate)
  (d) increment  N years built, then one new month's files added and built again,
                 for N in the scale's history lengths: incremental / full build time
  (e) overhead   the bundled sample (data/landing, 24 files) through the CLI vs
                 `dbt build` alone on the same warehouse

Peak memory: the process tree (the CLI and the dbt subprocess it starts) is sampled from
/proc every 0.1 s and the RSS of its processes summed (an upper bound: shared pages count
twice); each process's own maximum and GNU time's maximum RSS (largest single process)
are reported beside it. The mean 1-minute load average during each measurement is kept:
on a shared machine, other work inflates the times.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PY = ROOT / ".venv" / "bin" / "python"

# Run under the project's virtualenv (DuckDB, Dagster, dbt) whatever `python` started us.
if VENV_PY.exists() and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve() and not os.environ.get("BENCH_REEXEC"):
    os.environ["BENCH_REEXEC"] = "1"
    os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])

sys.path.insert(0, str(ROOT / "bench"))
import generate as gen  # noqa: E402

PY = str(VENV_PY if VENV_PY.exists() else Path(sys.executable))
DBT = str(ROOT / ".venv" / "bin" / "dbt")
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else shutil.which("time")  # GNU time -v: max RSS
NEW_MONTH = gen.add_months(gen.LAST_HISTORY_MONTH, 1)
QUIET_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DAGSTER_DISABLE_TELEMETRY": "1", "GX_ANALYTICS_ENABLED": "False",
             "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class Scale:
    codes: int | None  # None: every code of gacc_commodities
    years: int  # the main data set: this many years ending 2023-12
    history: tuple[int, ...]  # (d): years of history built before adding one month
    ingest_set: tuple[int | None, int]  # (c): codes x months of full 10,000-row files for the ingest probe
    note: str


SCALES = {
    "tiny": Scale(8, 2, (1, 2), (30, 1), "smoke size: seconds of data, the project's fixed costs only"),
    "default": Scale(50, 10, (2, 5, 10), (1000, 2), "10 years x 50 codes (~0.6% of the full size)"),
    "medium": Scale(500, 10, (2, 5, 10), (2000, 2), "10 years x 500 codes (~5.6% of the full size)"),
    "full": Scale(None, 10, (2, 5, 10), (None, 2), "10 years x all codes (~50M rows): the issue's national size"),
}

TARGETS = {
    "build_vs_baseline": 1.5,
    "peak_memory_gib": 2.0,
    "ingest_vs_read_csv": 0.65,
    "incremental_share": 0.05,
    "sample_vs_dbt": 2.0,
}


# ----------------------------------------------------------------------------- measuring


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _tree_rss(root: int, per_process: dict | None = None) -> int:
    """Summed RSS of `root` and its descendants; `per_process` collects each one's maximum."""
    page = os.sysconf("SC_PAGE_SIZE")
    children = _children_map()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm") as handle:
                rss = int(handle.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
        total += rss
        if per_process is not None:
            if pid not in per_process:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        args = handle.read().split(b"\0")
                    name = " ".join(Path(a.decode(errors="replace")).name if i < 2 else a.decode(errors="replace")
                                    for i, a in enumerate(args[:4]) if a)
                except OSError:
                    name = str(pid)
                per_process[pid] = [name[:60], 0]
            per_process[pid][1] = max(per_process[pid][1], rss)
    return total


@dataclass
class Measured:
    cmd: list[str]
    returncode: int
    wall_s: float
    tree_peak_rss: int
    max_single_rss: int | None  # GNU time, KiB -> bytes
    output: str
    log: Path
    load: float | None = None  # mean 1-minute load average while it ran (other work on the machine)
    top_processes: list = field(default_factory=list)  # [(command, max RSS)] largest first

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_measured(cmd: list[str], log: Path, env: dict | None = None, cwd: Path = ROOT, interval: float = 0.1) -> Measured:
    """Run `cmd`, sampling the RSS of its process tree; stdout+stderr go to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    time_file = log.with_suffix(".time")
    full = [GNU_TIME, "-v", "-o", str(time_file), *cmd] if GNU_TIME else cmd
    peak = 0
    loads: list[float] = []
    per_process: dict = {}
    done = threading.Event()
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env={**os.environ, **QUIET_ENV, **(env or {})})

        def sample():
            nonlocal peak
            tick = 0
            while not done.is_set():
                peak = max(peak, _tree_rss(proc.pid, per_process))
                if tick % 10 == 0:
                    loads.append(os.getloadavg()[0])
                tick += 1
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        returncode = proc.wait()
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
    single = None
    if time_file.exists():
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_file.read_text())
        single = int(m.group(1)) * 1024 if m else None
    load = sum(loads) / len(loads) if loads else None
    top = sorted((tuple(v) for v in per_process.values()), key=lambda v: -v[1])[:3]
    return Measured(cmd, returncode, wall, peak, single, log.read_text(errors="replace"), log, load, top)


def last_json(output: str) -> dict:
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def parse_duration(text: str) -> float:
    """Dagster's format_duration: 0.83ms, 533ms, 5.6s, 4m52s, 1h4m."""
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?", text)
    if not m:
        raise ValueError(text)
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


@dataclass
class Build:
    measured: Measured
    run_id: str | None
    success: bool
    reported_s: float | None  # what the CLI prints ("SUCCESS in 50.9 s")
    steps: dict[str, float] = field(default_factory=dict)
    engine_s: float | None = None  # "Finished steps in process ... in 40.81s"
    dbt_nodes: list = field(default_factory=list)  # (unique_id, seconds) from run_results.json
    dbt_elapsed_s: float | None = None

    @property
    def orchestration_s(self) -> float:
        """Wall time outside every step: interpreter start, imports, definitions, run start/end, report."""
        return self.measured.wall_s - sum(self.steps.values())


def parse_build(measured: Measured) -> Build:
    out = measured.output
    m = re.search(r"Run ([0-9a-f-]{36}): (SUCCESS|FAILURE) in ([\d.]+) s", out)
    build = Build(measured, m.group(1) if m else None, bool(m and m.group(2) == "SUCCESS"), float(m.group(3)) if m else None)
    for step, duration in re.findall(r'Finished execution of step "([^"]+)" in (\S+?)\.\s*$', out, re.M):
        build.steps[step] = build.steps.get(step, 0.0) + parse_duration(duration)
    for step in re.findall(r'Execution of step "([^"]+)" failed', out):
        build.steps.setdefault(step, float("nan"))
    m = re.search(r"Finished steps in process \(pid: \d+\) in (\S+?)\s*$", out, re.M)
    build.engine_s = parse_duration(m.group(1)) if m else None
    # A step whose STEP_SUCCESS line is missing from the output (the last one sometimes is):
    # from its STEP_START to the end of the steps, to the second (the log's resolution).
    stamp = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) [+-]\d{4} - dagster - \w+ - .*"
    ends = re.findall(stamp + r"Finished steps in process", out, re.M)
    for when, step in re.findall(stamp + r'STEP_START - Started execution of step "([^"]+)"', out, re.M):
        if step not in build.steps and ends:
            t0, t1 = (dt.datetime.strptime(x, "%Y-%m-%d %H:%M:%S") for x in (when, ends[-1]))
            build.steps[step] = (t1 - t0).total_seconds()
    if build.run_id:
        results = sorted((ROOT / "dbt" / "target").glob(f"customs_dbt_models-{build.run_id[:7]}*/run_results.json"))
        if results:
            data = json.loads(results[-1].read_text())
            build.dbt_elapsed_s = data.get("elapsed_time")
            build.dbt_nodes = sorted(((r["unique_id"], r["execution_time"]) for r in data["results"]), key=lambda r: -r[1])
    return build


FREE_DEAD_RUNS = """
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
with DagsterInstance.get() as instance:
    for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED])):
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        instance.report_run_failed(run, message="killed (bench/run.py frees its pool slot)")
"""


def cli_build(work: Path, landing: Path, log: Path) -> Build:
    env = {"CUSTOMS_LANDING_DIR": str(landing), "WAREHOUSE_PATH": str(work / "warehouse.duckdb"),
           "DAGSTER_HOME": str(work / "dagster_home")}
    build = parse_build(run_measured([PY, "-m", "dagster_project.cli", "build"], log, env))
    if build.measured.returncode < 0 or build.run_id is None:
        # Killed (a signal, not a failed build): Dagster still counts the run as started and keeps
        # its DuckDB pool slot, so the next build in this DAGSTER_HOME would wait for ever.
        subprocess.run([PY, "-c", FREE_DEAD_RUNS], env={**os.environ, **QUIET_ENV, **env}, cwd=ROOT,
                       capture_output=True, timeout=300)
    return build


def probe(args: list[str], log: Path) -> tuple[dict, Measured]:
    measured = run_measured([PY, str(ROOT / "bench" / "probes.py"), *args], log)
    if not measured.ok:
        raise RuntimeError(f"probe {args[0]} failed, see {log}")
    return last_json(measured.output), measured


# ----------------------------------------------------------------------------- data sets


def link_months(pool: Path, landing: Path, first: dt.date, last: dt.date) -> int:
    """Hard-link the pool's files for months first..last into landing/exports (keeps mtimes)."""
    target = landing / "exports"
    target.mkdir(parents=True, exist_ok=True)
    wanted = {f"{m:%Y%m}" for m in gen.month_range(first, last)}
    n = 0
    for src in sorted((pool / "exports").glob("gacc_exports_*.csv")):
        if src.name.split("_")[2] in wanted:
            dst = target / src.name
            if not dst.exists():
                os.link(src, dst)
            n += 1
    return n


def landing_stats(landing: Path) -> dict:
    files = sorted((landing / "exports").glob("*.csv"))
    return {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}


# ----------------------------------------------------------------------------- report


def gib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 2**30:.2f} GiB"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**MISSED**")


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    import duckdb

    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "dagster_project", "dbt"], cwd=ROOT,
                           capture_output=True, text=True).stdout.split("\n")
    return {"nproc": os.cpu_count(), "ram_gib": round(ram / 2**30, 1), "cpu": cpu, "python": platform.python_version(),
            "duckdb": duckdb.__version__, "git_head": git, "uncommitted": [d[3:] for d in dirty if d.strip()],
            "load_avg_at_start": os.getloadavg()}


def steps_table(build: Build) -> list[str]:
    total = build.measured.wall_s
    lines = ["| step | seconds | share of wall |", "|---|---:|---:|"]
    for step, s in sorted(build.steps.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {step} | {s:.1f} | {100 * s / total:.0f}% |")
    lines.append(f"| (outside the steps: start-up, imports, definitions, run bookkeeping, report) | "
                 f"{build.orchestration_s:.1f} | {100 * build.orchestration_s / total:.0f}% |")
    return lines


def write_results(path: Path, r: dict) -> str:
    s, m = r["scale"], r["machine"]
    L: list[str] = []
    add = L.append
    now = dt.datetime.now(dt.timezone.utc)
    knobs = " ".join(f"{k}={v}" for k, v in r.get("env", {}).items())
    add(f"\n## {now:%Y-%m-%d %H:%M} UTC: BENCH_SCALE={s['name']}" + (f" ({knobs})" if knobs else "") + "\n")
    add(f"Machine: {m['nproc']} cores (nproc), {m['ram_gib']} GiB RAM, {m['cpu']}; Python {m['python']}, DuckDB {m['duckdb']}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['load_avg_at_start'])}.  ")
    add(f"Code measured: git {m['git_head']}" + (f" with uncommitted changes in {', '.join(m['uncommitted'])} "
        "(other engineers' work in progress in the same tree)" if m["uncommitted"] else "")
        + (f"; HEAD was {r['git_head_at_end']} at the end (commits landed during the run)"
           if r.get("git_head_at_end") and r["git_head_at_end"] != m["git_head"] else "") + ".  ")
    g = r["data"]
    add(f"Data: {s['note']}. Main set {g['main_rows']:,} rows in {g['main_files']} files ({g['main_bytes'] / 1e6:,.1f} MB GB18030), "
        f"{g['codes']} HS8 codes x {s['years'] * 12} months ({g['first']}..{g['last']}), {g['code_partners']:,} code-partner pairs; "
        f"generated (with the extra month {NEW_MONTH:%Y-%m}) in {g['generate_s']:.1f} s ({g['pool_rows'] / g['generate_s']:,.0f} rows/s).\n")

    a, b = r.get("baseline"), r.get("build")
    add("| measurement | measured | target | ratio / verdict |")
    add("|---|---|---|---|")
    if a and b:
        ratio = b["wall_s"] / a["wall_s"]
        add(f"| (a) baseline (bench/baseline.py) | {a['wall_s']:.1f} s, peak RSS {gib(a['tree_peak_rss'])} "
            f"(load avg {a['load'] or 0:.1f}) | floor | |")
        add(f"| (b) project build (CLI) | {b['wall_s']:.1f} s ({'SUCCESS' if b['success'] else 'FAILURE'}), "
            f"peak RSS {gib(b['tree_peak_rss'])} (process tree; largest process {gib(b['max_single_rss'])}; "
            f"load avg {b['load'] or 0:.1f}) | "
            f"<= {TARGETS['build_vs_baseline']}x baseline | {ratio:.1f}x: {verdict(ratio <= TARGETS['build_vs_baseline'])} |")
        top = "; ".join(f"{n} {gib(v)}" for n, v in b.get("top_processes", [])[:2])
        add(f"| peak memory of the build | {gib(b['tree_peak_rss'])}" + (f" (per process: {top})" if top else "")
            + f" | < {TARGETS['peak_memory_gib']:.0f} GiB | {verdict(b['tree_peak_rss'] < TARGETS['peak_memory_gib'] * 2**30)} |")
    c = r.get("ingest")
    if c:
        add(f"| (c) ingest, main set (raw_customs_extracts step) | {c['step_rows_per_s']:,.0f} rows/s ({c['rows']:,} rows in "
            f"{c['step_s']:.1f} s) vs DuckDB read_csv {c['read_csv_rows_per_s']:,.0f} rows/s | >= {TARGETS['ingest_vs_read_csv']:.0%} "
            f"of read_csv | {c['ratio']:.1%}: {verdict(c['ratio'] >= TARGETS['ingest_vs_read_csv'])} |")
        cs = c["set"]
        add(f"| (c) ingest, {cs['files']} files of up to 10,000 rows ({cs['rows']:,} rows; ingest_landing alone) | "
            f"{c['probe']['rows_per_s']:,.0f} rows/s vs DuckDB read_csv {c['read_csv_set']['grouped']['rows_per_s']:,.0f} rows/s | "
            f">= {TARGETS['ingest_vs_read_csv']:.0%} of read_csv | {c['set_ratio']:.1%}: "
            f"{verdict(c['set_ratio'] >= TARGETS['ingest_vs_read_csv'])} |")
    d = r.get("incremental")
    if d:
        shares = [x["share"] for x in d]
        growing = len(shares) > 1 and d[-1]["incremental_s"] > 1.25 * d[0]["incremental_s"]
        add(f"| (d) one new month | " + "; ".join(f"{x['years']}y: {x['incremental_s']:.1f} s of {x['full_s']:.1f} s = {x['share']:.0%}"
                                              for x in d)
            + f" | <= {TARGETS['incremental_share']:.0%} of the full build, flat with history | "
            f"{verdict(all(x <= TARGETS['incremental_share'] for x in shares) and not growing)}"
            + (" (grows with history)" if growing else "") + " |")
    e = r.get("sample")
    if e:
        add(f"| (e) sample build (24 files) | CLI {e['cli_s']:.1f} s vs `dbt build` alone {e['dbt_s']:.1f} s | "
            f"<= {TARGETS['sample_vs_dbt']:.0f}x dbt alone | {e['ratio']:.1f}x: {verdict(e['ratio'] <= TARGETS['sample_vs_dbt'])} |")
    f = r.get("checks")
    if f and b:
        add(f"| (f) quality checks | quality_gate step {f['step_s']:.1f} s = {f['step_s'] / b['wall_s']:.0%} of the build | "
            f"stated | {len(f['probe']['checks'])} checks; failing: {', '.join(f['probe']['failed']) or 'none'} |")
    add("")
    if b:
        add(f"(b) per step, {b['rows']:,} rows (CLI exit {b['returncode']}, the CLI itself reports {b['reported_s']} s):\n")
        L.extend(b["steps_table"])
        if b.get("dbt_nodes"):
            by_type: dict[str, float] = {}
            for n, t in b["dbt_nodes"]:
                by_type[n.split(".")[0]] = by_type.get(n.split(".")[0], 0.0) + t
            models = [(n.split(".")[-1], t) for n, t in b["dbt_nodes"] if n.startswith("model.")]
            add(f"\ndbt inside the customs_dbt_models step: dbt's own elapsed {b['dbt_elapsed_s']:.1f} s of the step's "
                f"{b['steps'].get('customs_dbt_models', 0):.1f} s; node time by type (2 threads, so it can exceed elapsed): "
                + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(by_type.items(), key=lambda kv: -kv[1]))
                + "; slowest models: " + ", ".join(f"{n} {t:.1f} s" for n, t in models[:6]) + ".")
        if r.get("compare"):
            cmp_ = r["compare"]
            add(f"\nBaseline vs project marts: {'identical' if cmp_['identical'] else 'DIFFERENT'} "
                f"(fct_exports_monthly {cmp_['fct_exports_monthly']['project_rows']:,} rows, "
                f"export_growth_monthly {cmp_['export_growth_monthly']['project_rows']:,} rows; rows only in one: "
                f"{cmp_['fct_exports_monthly']['only_in_baseline'] + cmp_['fct_exports_monthly']['only_in_project']}, "
                f"{cmp_['export_growth_monthly']['only_in_baseline'] + cmp_['export_growth_monthly']['only_in_project']}).")
    if a:
        add(f"\n(a) baseline split: transcode {a['transcode_s']:.1f} s, read_csv {a['read_s']:.1f} s, "
            f"fct {a['fct_s']:.1f} s, growth {a['growth_s']:.1f} s.")
    if c:
        p0, cs = c["probe"], c["set"]
        add(f"\n(c) DuckDB read_csv on UTF-8 copies of the main set: {c['read_csv_rows_per_s']:,.0f} rows/s with many files "
            f"per statement, {c['read_csv_per_file_rows_per_s']:,.0f} rows/s with one statement per file. "
            f"On the {cs['files']} files of {cs['codes']} codes x {cs['months']} months: read_csv "
            f"{c['read_csv_set']['grouped']['rows_per_s']:,.0f} / {c['read_csv_set']['per_file']['rows_per_s']:,.0f} rows/s "
            f"(grouped / per file); ingest_landing {p0['rows_per_s']:,.0f} rows/s, {p0['per_file_rows_per_s']:,.0f} rows/s "
            f"leaving out its once-per-run setup ({p0['setup_s']:.1f} s); of its {p0['seconds']:.1f} s: SQL {p0['sql_s']:.1f} s, "
            f"transcoding {p0['transcode_s']:.1f} s, SHA-256 {p0['sha256_s']:.2f} s; top statements: "
            + "; ".join(f"{k} {v:.1f} s" for k, v, _ in p0["sql_top"][:6]) + ".")
        if c.get("probe_per_file"):
            p = c["probe_per_file"]
            add(f"\nThe same {cs['files']} files with batching off (CUSTOMS_INGEST_BATCH=0: every file through the per-file "
                f"gate, as before batching): {p['rows_per_s']:,.0f} rows/s; batched ({p0['batched_files']} of {p0['files']} files "
                f"went many per statement): {p0['rows_per_s'] / p['rows_per_s']:.1f}x faster.")
    if d:
        add("\n(d) one new month (" + f"{NEW_MONTH:%Y-%m}" + "):\n")
        add("| history | rows before | full build s | +1 month build s | share | ingest step s | dbt step s | quality_gate s | serving steps s | outside steps s | load avg (full, +1) |")
        add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for x in d:
            st = x["incremental_steps"]
            serving = sum(v for k, v in st.items() if k.startswith("serving"))
            add(f"| {x['years']} years | {x['rows']:,} | {x['full_s']:.1f} | {x['incremental_s']:.1f} | {x['share']:.0%} | "
                f"{st.get('raw_customs_extracts', 0):.1f} | {st.get('customs_dbt_models', 0):.1f} | {st.get('quality_gate', 0):.1f} | "
                f"{serving:.1f} | {x['incremental_outside_s']:.1f} | {', '.join(f'{v or 0:.1f}' for v in x['load'])} |")
        for x in d:
            if x.get("rerun_note"):
                add(f"\n{x['years']} years: {x['rerun_note']}.")
    if e:
        add(f"\n(e) sample: CLI {e['cli_s']:.1f} s (steps: " + ", ".join(f"{k} {v:.1f}" for k, v in e["cli_steps"].items())
            + f"), peak RSS {gib(e['cli_peak'])}; `dbt build` alone {e['dbt_s']:.1f} s, peak RSS {gib(e['dbt_peak'])}; "
            f"load avg {', '.join(f'{v or 0:.1f}' for v in e['load'])}.")
    if f:
        add(f"\n(f) the checks' own seconds (as the gate recorded them; they add up to {f['probe']['run_checks_s']:.1f} s "
            f"of the step's {f['step_s']:.1f} s, the rest is importing GX, data docs and Dagster): "
            + "; ".join(f"{n} {s_:.1f} s" + ("" if ok else " (failed)") for n, _, ok, s_, _, _ in
                        sorted(f["probe"]["checks"], key=lambda x: -x[3])[:5]) + ".")
        if f.get("queries"):
            add("Population queries alone (BENCH_PROBE_CHECKS=1, run_checks on a copy): "
                + "; ".join(f"{n} {q:.1f} s" for n, _, _, _, q, _ in sorted(f["queries"]["checks"], key=lambda x: -x[4])[:5]) + ".")
    add(f"\nLoad average at the end: {', '.join(f'{x:.2f}' for x in r.get('load_avg_at_end', ()))}; total bench time "
        f"{r.get('bench_s', 0) / 60:.1f} min. Raw figures: bench/out/{s['name']}/results.json (not committed).")
    if r.get("problems"):
        add("\nProblems during the run: " + "; ".join(r["problems"]))
    text = "\n".join(L) + "\n"
    if not path.exists():
        path.write_text("# Benchmark results\n\nAppended by `bench/run.py` (see bench/README.md). Newest last.\n")
    with path.open("a") as handle:
        handle.write(text)
    return text


# ----------------------------------------------------------------------------- the run


def main() -> int:
    name = os.environ.get("BENCH_SCALE", "default")
    if name not in SCALES:
        print(f"BENCH_SCALE must be one of {', '.join(SCALES)}", file=sys.stderr)
        return 2
    scale = SCALES[name]
    if os.environ.get("BENCH_HISTORY"):  # e.g. BENCH_HISTORY=10: only the 10-year increment
        scale = Scale(scale.codes, scale.years, tuple(int(x) for x in os.environ["BENCH_HISTORY"].split(",")),
                      scale.ingest_set, scale.note)
    bench_started = time.perf_counter()
    skip = {s.strip() for s in os.environ.get("BENCH_SKIP", "").split(",") if s.strip()}
    out = ROOT / "bench" / "out" / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    problems: list[str] = []
    results: dict = {"scale": {"name": name, **scale.__dict__}, "machine": machine(), "problems": problems,
                     "env": {k: os.environ[k] for k in ("BENCH_HISTORY", "BENCH_SKIP") if os.environ.get(k)}}

    def say(text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)

    say(f"scale {name}: {scale.note}; output in {out}")
    years_needed = max((scale.years, *scale.history))
    first, last = gen.history(years_needed)
    pool = out / "pool"
    g = gen.generate(pool, scale.codes, first, NEW_MONTH, quiet=True)
    main_first, main_last = gen.history(scale.years)
    main_dir = out / f"build_{scale.years}y"
    main_landing = main_dir / "landing"
    link_months(pool, main_landing, main_first, main_last)
    st = landing_stats(main_landing)
    results["data"] = {"pool_rows": g.rows, "pool_files": g.files, "generate_s": g.seconds, "codes": g.codes,
                       "code_partners": g.code_partners, "first": f"{main_first:%Y-%m}", "last": f"{main_last:%Y-%m}",
                       "main_files": st["files"], "main_bytes": st["bytes"]}
    say(f"generated {g.rows:,} rows in {g.files} files in {g.seconds:.1f} s; main set {st['files']} files")

    # (a) baseline
    base_dir = out / "baseline"
    m = run_measured([PY, str(ROOT / "bench" / "baseline.py"), str(main_landing), str(base_dir / "baseline.duckdb")],
                     base_dir / "baseline.log")
    if not m.ok:
        problems.append(f"baseline failed (exit {m.returncode}), see {m.log}")
        say(problems[-1])
        a = None
    else:
        a = {**last_json(m.output), "wall_s": m.wall_s, "tree_peak_rss": m.tree_peak_rss, "max_single_rss": m.max_single_rss,
             "load": m.load}
        results["data"]["main_rows"] = a["rows"]
        say(f"(a) baseline {m.wall_s:.1f} s, peak {gib(m.tree_peak_rss)}")
    results["baseline"] = a

    # (b) the project build
    say("(b) project build via the CLI ...")
    b = cli_build(main_dir, main_landing, main_dir / "cli_full.log")
    if not b.success:
        problems.append(f"project build exit {b.measured.returncode} ({'SUCCESS' if b.success else 'FAILURE'}), see {b.measured.log}")
    import duckdb

    warehouse = main_dir / "warehouse.duckdb"
    rows = None
    if warehouse.exists():
        con = duckdb.connect(str(warehouse), read_only=True)
        rows = con.execute("SELECT count(*) FROM raw.customs_rows").fetchone()[0]
        con.close()
    results["data"].setdefault("main_rows", rows or 0)
    results["build"] = {"wall_s": b.measured.wall_s, "success": b.success, "returncode": b.measured.returncode,
                        "reported_s": b.reported_s, "tree_peak_rss": b.measured.tree_peak_rss,
                        "max_single_rss": b.measured.max_single_rss, "load": b.measured.load,
                        "top_processes": b.measured.top_processes, "steps": b.steps, "steps_table": steps_table(b),
                        "orchestration_s": b.orchestration_s, "dbt_elapsed_s": b.dbt_elapsed_s, "dbt_nodes": b.dbt_nodes,
                        "rows": rows or 0}
    say(f"(b) build {b.measured.wall_s:.1f} s, peak {gib(b.measured.tree_peak_rss)}, steps "
        + ", ".join(f"{k} {v:.1f}" for k, v in b.steps.items()))
    if a and warehouse.exists():
        cmp_, _ = probe(["compare", str(base_dir / "baseline.duckdb"), str(warehouse)], out / "probe_compare.log")
        results["compare"] = cmp_
        say(f"    marts identical to the baseline's: {cmp_['identical']}")
        if not cmp_["identical"]:
            problems.append(f"baseline and project marts differ: {cmp_}")

    # (f) the checks: each check's seconds from the run's event log; re-timing the queries alone is opt-in
    if "checks" not in skip and b.run_id:
        gate, _ = probe(["gate_events", str(main_dir / "dagster_home"), b.run_id], out / "probe_gate_events.log")
        results["checks"] = {"step_s": b.steps.get("quality_gate", float("nan")), "probe": gate}
        if os.environ.get("BENCH_PROBE_CHECKS") and warehouse.exists():
            results["checks"]["queries"], _ = probe(["checks", str(warehouse)], out / "probe_checks.log")
        say(f"(f) quality_gate step {b.steps.get('quality_gate', float('nan')):.1f} s; checks' own seconds "
            f"{gate['run_checks_s']:.1f} s")

    # (c) ingest throughput
    if "ingest" not in skip and "raw_customs_extracts" in b.steps:
        step_s = b.steps["raw_customs_extracts"]
        step_rate = (rows or 0) / step_s
        rc, _ = probe(["readcsv", str(main_landing), str(out / "readcsv_main.duckdb")], out / "probe_readcsv_main.log")
        # full 10,000-row files, as at the national size
        codes, months = scale.ingest_set
        set_landing = out / "ingest_set" / "landing"
        s_first = gen.add_months(gen.LAST_HISTORY_MONTH, 1 - months)
        gs = gen.generate(set_landing, codes, s_first, gen.LAST_HISTORY_MONTH, quiet=True)
        ing, _ = probe(["ingest", str(set_landing), str(out / "ingest_set" / "probe")], out / "probe_ingest.log")
        ing_p, _ = probe(["ingest", str(set_landing), str(out / "ingest_set" / "probe"), "--per-file"],
                         out / "probe_ingest_per_file.log")
        rc_set, _ = probe(["readcsv", str(set_landing), str(out / "readcsv_set.duckdb")], out / "probe_readcsv_set.log")
        shutil.rmtree(out / "ingest_set" / "probe", ignore_errors=True)
        results["ingest"] = {
            "rows": rows, "step_s": step_s, "step_rows_per_s": step_rate,
            "read_csv_rows_per_s": rc["grouped"]["rows_per_s"], "read_csv_per_file_rows_per_s": rc["per_file"]["rows_per_s"],
            "ratio": step_rate / rc["grouped"]["rows_per_s"], "read_csv": rc,
            "set": {"codes": gs.codes, "months": months, "files": gs.files, "rows": gs.rows},
            "probe": ing, "read_csv_set": rc_set,
            "set_ratio": ing["rows_per_s"] / rc_set["grouped"]["rows_per_s"],
            "probe_per_file": ing_p,
        }
        say(f"(c) ingest step {step_rate:,.0f} rows/s vs read_csv {rc['grouped']['rows_per_s']:,.0f} rows/s "
            f"({step_rate / rc['grouped']['rows_per_s']:.1%}); 10,000-row files: {ing['rows_per_s']:,.0f} vs "
            f"{rc_set['grouped']['rows_per_s']:,.0f} rows/s ({results['ingest']['set_ratio']:.1%})")

    # (d) one new month on N years of history
    if "incremental" not in skip:
        inc = []
        for years in scale.history:
            h_first, h_last = gen.history(years)
            if years == scale.years and b.success:
                work, landing, full = main_dir, main_landing, b
            else:
                work = out / f"build_{years}y"
                landing = work / "landing"
                link_months(pool, landing, h_first, h_last)
                say(f"(d) {years} years: full build ...")
                full = cli_build(work, landing, work / "cli_full.log")
            con = duckdb.connect(str(work / "warehouse.duckdb"), read_only=True)
            before = con.execute("SELECT count(*) FROM raw.customs_rows").fetchone()[0]
            con.close()
            added = link_months(pool, landing, NEW_MONTH, NEW_MONTH)
            say(f"(d) {years} years: +{added} file(s) of {NEW_MONTH:%Y-%m}, rebuild ...")
            again = cli_build(work, landing, work / "cli_incremental.log")
            if not (full.success and again.success):
                problems.append(f"(d) {years} years: build failed (full {full.success}, incremental {again.success}), see {work}")
            share = again.measured.wall_s / full.measured.wall_s
            inc.append({"years": years, "rows": before, "full_s": full.measured.wall_s, "incremental_s": again.measured.wall_s,
                        "share": share, "incremental_steps": again.steps, "incremental_outside_s": again.orchestration_s,
                        "full_steps": full.steps, "incremental_peak_rss": again.measured.tree_peak_rss,
                        "load": [full.measured.load, again.measured.load]})
            say(f"(d) {years} years: full {full.measured.wall_s:.1f} s, +1 month {again.measured.wall_s:.1f} s ({share:.0%})")
        results["incremental"] = inc

    # (e) fixed overhead: the bundled sample, CLI vs dbt alone
    if "sample" not in skip:
        work = out / "sample"
        say("(e) sample build via the CLI ...")
        s_build = cli_build(work, ROOT / "data" / "landing", work / "cli.log")
        dbt_cmd = [DBT, "build", "--project-dir", "dbt", "--profiles-dir", "dbt",
                   "--target-path", str(work / "dbt_target"), "--log-path", str(work / "dbt_logs")]
        say("(e) dbt build alone on the same warehouse ...")
        d_alone = run_measured(dbt_cmd, work / "dbt_build.log", env={"WAREHOUSE_PATH": str(work / "warehouse.duckdb")})
        if not (s_build.success and d_alone.ok):
            problems.append(f"(e) sample: CLI success {s_build.success}, dbt exit {d_alone.returncode}, see {work}")
        results["sample"] = {"cli_s": s_build.measured.wall_s, "cli_steps": s_build.steps, "cli_peak": s_build.measured.tree_peak_rss,
                             "dbt_s": d_alone.wall_s, "dbt_peak": d_alone.tree_peak_rss,
                             "load": [s_build.measured.load, d_alone.load],
                             "ratio": s_build.measured.wall_s / d_alone.wall_s}
        say(f"(e) sample CLI {s_build.measured.wall_s:.1f} s vs dbt alone {d_alone.wall_s:.1f} s")

    results["load_avg_at_end"] = os.getloadavg()
    results["git_head_at_end"] = machine()["git_head"]
    results["bench_s"] = time.perf_counter() - bench_started
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    if not os.environ.get("BENCH_NO_RESULTS"):
        text = write_results(ROOT / "bench" / "RESULTS.md", results)
        print(text)
    say(f"done; details in {out}/results.json" + (f"; {len(problems)} problem(s)" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
