"""Run the quality checks: DuckDB computes each check's aggregates, a GX suite validates them,
and the results are rendered into GX data docs.

Each check's population query returns a small frame (a row per code, month or load) while the
millions of fact rows stay in DuckDB; a second query, run only when the check fails, returns a
sample of the offending rows for the Dagster UI. GX is imported when a gate runs (it takes
seconds), not when Dagster loads the definitions.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Callable

import duckdb

from dagster_project.lib.quality.check_spec import QualityCheck
from dagster_project.lib.quality.checks import CHECKS
from dagster_project.lib.quality.offline_data_docs import make_offline
from dagster_project.lib.quality.outcome import CheckOutcome
from dagster_project.lib.quality.reconciliation_checks import SPANS
from dagster_project.lib.quality.scope import Scope, render_full
from dagster_project.lib.quality.unit_checks import PREPARE, prepare

DOCS_SITE = "quality_gate"


def docs_index(docs_dir: Path) -> Path:
    return docs_dir / "index.html"


def check_sql(check: QualityCheck) -> str:
    """Every query a check's population reads, the temp tables it requires included."""
    return " ".join(filter(None, [check.population_sql, *(s for t in check.requires for s in PREPARE[t])]))


def run_checks(
    con: duckdb.DuckDBPyConnection,
    docs_dir: Path | None = None,
    checks: tuple[QualityCheck, ...] = CHECKS,
    rejected_files: list[tuple[str, str]] | None = None,
    on_result: Callable[[CheckOutcome], None] | None = None,
    scope: Scope | None = None,
) -> list[CheckOutcome]:
    """Validate every check with GX and build data docs in `docs_dir`.

    `scope`: the months rebuilt since the last publish (see Scope); None checks every month.
    """
    _disable_progress_bars()
    import great_expectations as gx

    context, source, site_names = _gx_context(gx, docs_dir)
    # rejected files still in the landing directory as they were rejected (a rejection of a file
    # since fixed or removed is history, not a warning)
    con.execute("CREATE OR REPLACE TEMP TABLE _current_rejections (file_path VARCHAR, reason VARCHAR)")
    if rejected_files:
        con.executemany("INSERT INTO _current_rejections VALUES (?, ?)", rejected_files)
    spans: dict[str, tuple | None] = {}
    if scope is not None:
        used = " ".join(c.population_sql + (c.sample_sql or "") for c in checks)
        for name, sql in SPANS.items():
            if "{span:" + name in used:
                spans[name] = con.execute(scope.render(sql)).fetchone()

    def render(sql: str) -> str:
        return render_full(sql) if scope is None else scope.render(sql, spans)

    outcomes = []
    prepared: set[str] = set()
    docs: list = []  # validation results and suites, rendered into data docs once at the end
    for check in checks:
        started = time.perf_counter()
        for table in check.requires:
            if table not in prepared:
                prepare(con, table, scope)
                prepared.add(table)
        try:
            frame = con.execute(render(check.population_sql)).df()
        except duckdb.Error as exc:
            raise RuntimeError(f"quality check {check.name}: its query failed: {exc}") from exc
        passed, results, identifiers = _validate(gx, context, source, check, frame)
        docs += identifiers
        sample: list[dict] = []
        if not passed:
            if check.sample_sql:
                sample = con.execute(render(check.sample_sql)).df().head(20).to_dict("records")
            elif check.expectations[0].type == "ExpectTableRowCountToEqual":
                sample = frame.head(20).to_dict("records")
            else:
                sample = _failing_rows(frame, check)
        outcome = CheckOutcome(
            check, passed, "; ".join(r["summary"] for r in results), results, sample, len(frame),
            time.perf_counter() - started, "all months" if scope is None else scope.describe(check_sql(check)),
        )
        outcomes.append(outcome)
        del frame
        _return_freed_memory()
        if on_result:
            on_result(outcome)
    if site_names and docs:
        # one data-docs build for the whole gate (a build per checkpoint re-renders the index each time)
        context.build_data_docs(site_names=site_names, resource_identifiers=docs)
        make_offline(docs_dir)  # GX's pages load CDNs; warehouse servers have no internet
    del context, source
    _return_freed_memory(collect=True)
    return outcomes


def _gx_context(gx, docs_dir: Path | None):
    """An ephemeral GX context with a pandas source for the frames and, given `docs_dir`, a data-docs site there."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    site_names = []
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            site_name=DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        site_names = [DOCS_SITE]
    return context, context.data_sources.add_pandas("duckdb_aggregates"), site_names


def _validate(gx, context, source, check: QualityCheck, frame) -> tuple[bool, list[dict], list]:
    """Run the check's suite over `frame`: (passed, a result per expectation, what data docs render)."""
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    batch_definition = source.add_dataframe_asset(check.name).add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name=check.name, meta={"severity": check.severity, "asset": check.asset}))
    for expectation in check.expectations:
        suite.add_expectation(getattr(gx.expectations, expectation.type)(**expectation.kwargs))
    validation = context.validation_definitions.add(gx.ValidationDefinition(name=check.name, data=batch_definition, suite=suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(name=f"gate_{check.name}", validation_definitions=[validation]))
    run = checkpoint.run(batch_parameters={"dataframe": frame})
    result_id, validation_result = next(iter(run.run_results.items()))
    results = [
        {
            "expectation": r.expectation_config.type,
            "kwargs": {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"},
            "success": bool(r.success),
            "summary": _summarise(r.expectation_config.type, r.result),
        }
        for r in validation_result.results
    ]
    return bool(validation_result.success), results, [result_id, ExpectationSuiteIdentifier(name=check.name)]


def _disable_progress_bars() -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


def _summarise(expectation_type: str, result: dict) -> str:
    if result.get("observed_value") is not None:
        return f"{expectation_type}: observed {result['observed_value']}"
    unexpected = result.get("unexpected_count")
    total = result.get("element_count")
    sample = result.get("partial_unexpected_list") or []
    shown = ", ".join(str(v) for v in sample[:3])
    return f"{expectation_type}: {unexpected} of {total} unexpected" + (f" (e.g. {shown})" if shown else "")


def _failing_rows(frame, check: QualityCheck) -> list[dict]:
    """Rows of the aggregate frame that break a between-expectation (for the UI sample)."""
    import pandas as pd

    mask = pd.Series(False, index=frame.index)
    for expectation in check.expectations:
        kw = expectation.kwargs
        if expectation.type == "ExpectColumnValuesToBeBetween" and kw["column"] in frame:
            col = frame[kw["column"]]
            if kw.get("min_value") is not None:
                mask |= col < kw["min_value"] if not kw.get("strict_min") else col <= kw["min_value"]
            if kw.get("max_value") is not None:
                mask |= col > kw["max_value"] if not kw.get("strict_max") else col >= kw["max_value"]
        elif expectation.type == "ExpectColumnPairValuesAToBeGreaterThanB":
            a, b = frame[kw["column_A"]], frame[kw["column_B"]]
            mask |= a < b if kw.get("or_equal") else a <= b
        elif expectation.type == "ExpectColumnPairValuesToBeEqual":
            mask |= frame[kw["column_A"]] != frame[kw["column_B"]]
    return frame[mask].head(20).to_dict("records")


@functools.lru_cache(maxsize=1)
def _libc():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _return_freed_memory(collect: bool = False) -> None:
    """Hand the heap freed by a check back to the system: glibc keeps it otherwise, and the
    steps after the gate (the Parquet export's DuckDB) would stack on top of it. `collect`
    also frees GX's reference cycles (0.15 s a time, so once, at the end of the gate)."""
    import gc

    if collect:
        gc.collect()
    trim = getattr(_libc(), "malloc_trim", None)  # glibc only (not macOS, musl): elsewhere nothing to trim
    if trim is not None:
        trim(0)
