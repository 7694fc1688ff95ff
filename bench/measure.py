"""Running a command while measuring it: wall time, peak memory of its process tree, load average."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else shutil.which("time")  # GNU time -v: max RSS
QUIET_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DAGSTER_DISABLE_TELEMETRY": "1", "GX_ANALYTICS_ENABLED": "False",
             "PYTHONUNBUFFERED": "1"}


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
