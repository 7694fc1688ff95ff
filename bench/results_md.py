"""bench/RESULTS.md: the dated section a bench run appends (the figures, against the issue's targets)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cli_build import DBT_STEPS, Build
from generate import NEW_MONTH

TARGETS = {
    "build_vs_baseline": 1.5,
    "peak_memory_gib": 2.0,
    "ingest_vs_read_csv": 0.65,
    "incremental_share": 0.05,
    "sample_vs_dbt": 2.0,
}


def dbt_steps_s(steps: dict[str, float]) -> float:
    """The two dbt assets' steps (the monthly models and the rest), as one figure."""
    return sum(v for k, v in steps.items() if k in DBT_STEPS)


def gib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 2**30:.2f} GiB"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**MISSED**")


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
        for x in r.get("baseline_limited") or []:
            if "error" in x:
                got = (f"did not finish: {x['error'].split(' (')[0]} in {x.get('failed_in', '?')} after {x['wall_s']:.1f} s"
                       + (f", {x['spill_peak_bytes'] / 1e9:.1f} GB spilled" if x.get("spill_peak_bytes") else ""))
                versus = "no floor to compare with"
            else:
                got = (f"{x['wall_s']:.1f} s, peak RSS {gib(x['tree_peak_rss'])}, {x['spill_peak_bytes'] / 1e9:.1f} GB "
                       f"spilled to disk (growth {x['growth_s']:.1f} s)")
                versus = f"the build is {b['wall_s'] / x['wall_s']:.2f}x of it"
            add(f"| (a2) baseline with DuckDB memory_limit={x['limit']} | {got} | context (not a target) | {versus} |")
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
            + f" | <= {TARGETS['incremental_share']:.0%} of the full build at the longest history, flat with history | "
            # the share is the target at 10 years ("one new month into 10 years of history");
            # shorter histories show whether the month's own time grows with history (their full
            # builds are short, so the fixed costs alone are a larger share of them)
            f"{verdict(shares[-1] <= TARGETS['incremental_share'] and not growing)}"
            + (" (grows with history)" if growing else "") + " |")
    e = r.get("sample")
    if e:
        add(f"| (e) sample build (24 files) | CLI {e['cli_s']:.1f} s vs `dbt build` alone {e['dbt_s']:.1f} s | "
            f"<= {TARGETS['sample_vs_dbt']:.0f}x dbt alone | {e['ratio']:.1f}x: {verdict(e['ratio'] <= TARGETS['sample_vs_dbt'])} |")
    f = r.get("checks")
    if f and b:
        add(f"| (f) quality checks | quality_gate step {f['step_s']:.1f} s = {f['step_s'] / b['wall_s']:.0%} of the build | "
            f"stated | {len(f['probe']['checks'])} checks; failing: {', '.join(f['probe']['failed']) or 'none'} |")
    if r.get("dashboard"):
        add(dashboard_row(r["dashboard"]))
    add("")
    if b:
        add(f"(b) per step, {b['rows']:,} rows (CLI exit {b['returncode']}, the CLI itself reports {b['reported_s']} s):\n")
        L.extend(b["steps_table"])
        if b.get("dbt_nodes"):
            by_type: dict[str, float] = {}
            for n, t in b["dbt_nodes"]:
                by_type[n.split(".")[0]] = by_type.get(n.split(".")[0], 0.0) + t
            models = [(n.split(".")[-1], t) for n, t in b["dbt_nodes"] if n.startswith("model.")]
            add(f"\ndbt inside the dbt steps ({', '.join(DBT_STEPS)}): dbt's own elapsed {b['dbt_elapsed_s']:.1f} s of the "
                f"steps' {dbt_steps_s(b['steps']):.1f} s; node time by type (2 threads, so it can exceed elapsed): "
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
        if c.get("design"):
            per_m = c["design"]["per_million_rows"]
            w = lambda k: per_m[k]["wall_s"]  # noqa: E731
            today = w("stage (both)") + w("today: parse into the checked table") + w("today: verdict over the checked table")
            text = w("stage (both)") + w("text: verdict over the parse") + w("text: insert into a raw table of text")
            add(f"\n(c) what the ingest's work costs on the same {cs['files']} files, per million rows (probes.py ingest_design, "
                f"DuckDB on 2 threads): read_csv into a table {w('read_csv into a table'):.2f} s (the reference); SHA-256 "
                f"{per_m['sha256']['cpu_s']:.2f} s and transcoding {per_m['transcode']['cpu_s']:.2f} s of CPU (Python, one thread); "
                f"the batch path: stage {w('stage (both)'):.2f} s, parse into the checked table "
                f"{w('today: parse into the checked table'):.2f} s, verdict {w('today: verdict over the checked table'):.2f} s "
                f"({today:.2f} s before its typed insert into raw.customs_rows); a raw table of text instead: stage, verdict "
                f"straight over the parse {w('text: verdict over the parse'):.2f} s, insert of the text rows "
                f"{w('text: insert into a raw table of text'):.2f} s = {text:.2f} s, "
                f"{w('read_csv into a table') / text:.0%} of read_csv's speed before hashing and transcoding "
                f"(verdicts identical: {c['design']['verdicts_equal']}).")
        if c.get("probe_per_file"):
            p = c["probe_per_file"]
            add(f"\nThe same {cs['files']} files with batching off (CUSTOMS_INGEST_BATCH=0: every file through the per-file "
                f"gate, as before batching): {p['rows_per_s']:,.0f} rows/s; batched ({p0['batched_files']} of {p0['files']} files "
                f"went many per statement): {p0['rows_per_s'] / p['rows_per_s']:.1f}x faster.")
    if d:
        add("\n(d) one new month (" + f"{NEW_MONTH:%Y-%m}" + "):\n")
        add("| history | rows before | full build s | +1 month build s | share | months it built | ingest step s | dbt steps s "
            "| quality_gate s | serving steps s | outside steps s | load avg (full, +1) |")
        add("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
        for x in d:
            st = x["incremental_steps"]
            serving = sum(v for k, v in st.items() if k.startswith("serving"))
            add(f"| {x['years']} years | {x['rows']:,} | {x['full_s']:.1f} | {x['incremental_s']:.1f} | {x['share']:.0%} | "
                f"{x.get('incremental_months') or '?'} | "
                f"{st.get('raw_customs_extracts', 0):.1f} | {dbt_steps_s(st):.1f} | {st.get('quality_gate', 0):.1f} | "
                f"{serving:.1f} | {x['incremental_outside_s']:.1f} | {', '.join(f'{v or 0:.1f}' for v in x['load'])} |")
        for x in d:
            if x.get("background_copy_s"):
                f_copy, i_copy = x["background_copy_s"]
                add(f"\n{x['years']} years: after each build the working copy was copied back from the served file in the "
                    f"background (off the build's path; the bench waited for it before going on): {f_copy or 0:.1f} s after "
                    f"the full build, {i_copy or 0:.1f} s after the +1 month build. Landing files hashed: "
                    + " and ".join(f"{n if n is not None else '?'} by the {w} build"
                                   for n, w in zip(x.get("files_hashed") or [None, None], ("full", "+1 month"))) + ".")
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
    if r.get("dashboard"):
        add(dashboard_paragraph(r["dashboard"]))
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


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def dashboard_row(g: dict) -> str:
    t, ratios = g["tables"], g["ratios"]
    names = {"served": "served export_growth_monthly", "ordered": "ordered by hs8, partner, month",
             "rare_earths": "export_growth_rare_earths"}
    measured = "; ".join(f"{names[k]}: cold {_ms(v['cold']['query_s'])}, warm {_ms(v['warm']['query_s'])}" for k, v in t.items())
    versus = "; ".join(f"served / {k.removeprefix('served_vs_')}: cold {ratios['cold'][k]:.1f}x, warm {ratios['warm'][k]:.1f}x"
                       for k in ratios["cold"])
    return (f"| (g) what a dashboard waits for: {g['hs8']}'s whole monthly series, world + top {len(g['partners'])} partners "
            f"({g['rows']} rows), read-only from the served file | {measured} | stated | {versus}"
            + ("" if g["same_rows"] else "; **the tables returned different rows**") + " |")


def dashboard_paragraph(g: dict) -> str:
    t = g["tables"]
    parts = [f"{k}: {v['rows']:,} rows in {v['row_groups']} row group(s), {v['row_groups_not_skipped']} of them holding "
             f"{g['hs8']} by their zonemap; cold (a fresh process each, median of {g['repeats']}) open {_ms(v['cold']['open_s'])} "
             f"+ query {_ms(v['cold']['query_s'])} (runs {', '.join(_ms(x) for x in v['cold']['query_runs_s'])}), warm "
             f"{_ms(v['warm']['query_s'])}" for k, v in t.items()]
    return (f"\n(g) the dashboard query (probes.py dashboard; {g['hs8']} to WLD and {', '.join(g['partners'])}), same rows "
            f"from every table: {g['same_rows']}. " + "; ".join(parts)
            + f". The ordered copy took {t['ordered']['build_s']:.1f} s to write ({t['ordered']['file_bytes'] / 1e6:,.1f} MB; "
            f"served file {g['served_bytes'] / 1e6:,.1f} MB). Ratios are of the query times (the open is the same file's, "
            "except the ordered scratch file's, which holds that one table).")
