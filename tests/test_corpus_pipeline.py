"""The whole corpus in one landing directory, through the real pipeline (two builds).

1. `python -m dagster_project.cli build` (what `make run` runs), in a subprocess with its own
   landing directory, warehouse and DAGSTER_HOME: it loads the good files, records the bad
   ones, builds and publishes the marts, prints every rejected file with its reason and
   exits 1.
2. A file is then changed in place (same name, same keys, new numbers) and the job runs
   again in-process: the marts show the revision, and the as-of query over
   intermediate.int_customs_facts_history answers with the old figures before the second
   build and the new ones after it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from conftest import Workspace, make_workspace
from corpus.build_corpus import (
    CNY_PER_USD,
    DEFAULT_KG,
    MAG,
    PRICE,
    REVISED_IN_PLACE,
    REVISED_V2,
    REVISION_V1,
    REVISION_V2,
    Case,
    build_corpus,
    revise_in_place,
)
from dagster_project.lib.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

AS_OF = """SELECT partner_code, quantity_kg FROM intermediate.int_customs_facts_history
           WHERE source_file = $file AND period_start = DATE '2025-11-01'
             AND valid_from <= $d AND (valid_to IS NULL OR valid_to > $d)
           ORDER BY 1"""


@dataclass
class CorpusRun:
    ws: Workspace
    cases: list[Case]
    cli: subprocess.CompletedProcess
    fct_after_first: list[tuple]
    between: dt.datetime  # a moment between the two builds (UTC, like loaded_at)
    second_success: bool

    def expects(self, outcome: str):
        return [e for c in self.cases for e in c.expects if e.outcome == outcome]


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory) -> CorpusRun:
    saved = {k: os.environ.get(k) for k in ("CUSTOMS_LANDING_DIR", "WAREHOUSE_PATH")}
    root = tmp_path_factory.mktemp("corpus")
    ws = make_workspace(root)
    cases = build_corpus(ws.landing)
    env = dict(
        os.environ,
        CUSTOMS_LANDING_DIR=str(ws.landing),
        WAREHOUSE_PATH=str(ws.warehouse),
        DAGSTER_HOME=str(root / "dagster_home"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        DAGSTER_DISABLE_TELEMETRY="1",
        GX_ANALYTICS_ENABLED="False",
    )
    cli = subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", "build"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    fct_after_first = ws.query(
        "SELECT partner_code, quantity_kg FROM marts.fct_exports_monthly WHERE month = DATE '2025-11-01' ORDER BY 1"
    ) if ws.warehouse.exists() else []
    time.sleep(0.05)
    between = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    time.sleep(0.05)
    revise_in_place(ws.landing)
    try:
        second = ws.build()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return CorpusRun(ws, cases, cli, fct_after_first, between, second.success)


def fct(ws: Workspace, month: str) -> list[tuple]:
    return ws.query(
        "SELECT partner_code, quantity_kg, value_usd, value_cny, source_row_count FROM marts.fct_exports_monthly "
        "WHERE month = CAST($m AS DATE) AND hs8 = $h ORDER BY partner_code",
        {"m": month, "h": MAG},
    )


# --------------------------------------------------------------------------- `make run`


def test_cli_prints_every_rejected_file_with_its_reason_and_exits_non_zero(corpus_run):
    out = corpus_run.cli.stdout
    assert corpus_run.cli.returncode == 1, corpus_run.cli.stderr[-3000:]
    assert "SUCCESS" in out, out[-3000:]  # the build itself succeeded: the good files are served
    rejected = corpus_run.expects("rejected")
    assert f"Rejected files ({len(rejected)})" in out
    for e in rejected:
        line = next((ln for ln in out.splitlines() if ln.startswith(f"  - {e.rel}: ")), None)
        assert line is not None, f"{e.rel} not listed"
        for text in e.reject:
            assert text in line, f"{e.rel}: {text!r} not in {line!r}"
    for e in corpus_run.expects("loaded"):
        assert f"  - {e.rel}: " not in out


# --------------------------------------------------------------------------- the corpus


def test_good_files_load_and_bad_ones_are_recorded(corpus_run):
    ws = corpus_run.ws
    assert corpus_run.second_success
    loads = dict(ws.query("SELECT file_path, sum(row_count) FROM raw.customs_loads GROUP BY 1"))
    expected_loads = {e.rel: e.rows for e in corpus_run.expects("loaded")}
    expected_loads[REVISED_IN_PLACE] = 2 * len(REVISION_V1)  # both versions are kept
    assert loads == expected_loads
    rejected = dict(ws.query("SELECT file_path, arg_max(reason, rejected_at) FROM audit.rejected_files GROUP BY 1"))
    assert set(rejected) == {e.rel for e in corpus_run.expects("rejected")}
    for e in corpus_run.expects("rejected"):
        for text in e.reject:
            assert text in rejected[e.rel]
    assert ws.query("SELECT count(*) FROM audit.rejected_files WHERE rejected_at IS NULL OR file_sha256 IS NULL") == [(0,)]


def test_marts_are_built_from_the_good_files(corpus_run):
    ws = corpus_run.ws
    # one month per loaded monthly case (2023-01 .. 2025-12); 2025-07 is the 10,000-row file of other codes
    months = ws.query("SELECT count(DISTINCT month) FROM marts.fct_exports_monthly WHERE hs8 = $h", {"h": MAG})[0][0]
    assert months == 23
    assert ws.scalar("SELECT count(*) FROM marts.fct_exports_monthly WHERE month = DATE '2025-07-01'") == 10_000
    assert ws.scalar("SELECT count(*) FROM marts.export_growth_monthly WHERE partner_iso3 = 'WLD' AND hs8 = $h", {"h": MAG}) == 23
    # every file loaded from an encoding or header variant gives the same partner figures
    expected = [(p, kg, kg * PRICE[p], None, 1) for p, kg in sorted(DEFAULT_KG.items())]
    for month in ("2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01", "2024-06-01", "2024-07-01",
                  "2024-12-01", "2025-06-01"):
        assert fct(ws, month) == expected, month
    # imports are not exports
    assert ws.scalar("SELECT count(*) FROM marts.fct_exports_monthly WHERE hs8 = '28053011' AND month = DATE '2025-09-01'") == 0


def test_usd_and_cny_side_by_side_and_the_quantity_counted_once(corpus_run):
    rows = fct(corpus_run.ws, "2025-05-01")
    assert rows == [
        (p, kg, kg * PRICE[p], round(kg * PRICE[p] * CNY_PER_USD), 2) for p, kg in sorted(DEFAULT_KG.items())
    ]


def test_regime_and_province_files_are_aggregated_in_the_marts(corpus_run):
    ws = corpus_run.ws
    assert fct(ws, "2024-08-01") == [("116", 10_000, 520_000, None, 2), ("304", 5_000, 275_000, None, 1)]
    assert fct(ws, "2024-09-01") == [("116", 8_500, 442_000, None, 2), ("502", 4_000, 200_000, None, 1)]
    assert fct(ws, "2024-10-01") == [("116", 8_000, 416_000, None, 3), ("502", 3_000, 150_000, None, 1)]
    # the detail stays in the history, by regime and province
    assert ws.query(
        """SELECT regime_code, province_code, quantity_kg FROM intermediate.int_customs_facts_current
           WHERE period_start = DATE '2024-10-01' AND partner_code = '116' ORDER BY 1, 2"""
    ) == [("10", "33", 5_000), ("10", "36", 1_000), ("14", "33", 2_000)]


def test_cumulative_ranges_land_in_the_cumulative_mart_not_the_monthly_one(corpus_run):
    ws = corpus_run.ws
    cumulative = ws.query(
        "SELECT period_start, period_end, partner_code, quantity_kg FROM marts.fct_exports_cumulative ORDER BY ALL"
    )
    jan, feb, mar = dt.date(2025, 1, 1), dt.date(2025, 2, 1), dt.date(2025, 3, 1)
    assert cumulative == [
        (jan, feb, "116", 19_000), (jan, feb, "304", 13_000),  # January and February published together
        (jan, mar, "116", 30_000), (jan, mar, "304", 21_000), (jan, mar, "502", 15_000),  # a YTD download
    ]
    assert ws.scalar(
        "SELECT count(*) FROM marts.fct_exports_monthly WHERE month BETWEEN DATE '2025-01-01' AND DATE '2025-03-01'"
    ) == 0


def test_tonnes_are_converted_and_the_conversion_recorded(corpus_run):
    ws = corpus_run.ws
    assert ws.scalar("SELECT unit_conversions FROM raw.customs_loads WHERE file_path = 'exports/tonnes_202506.csv'") == (
        "3 row(s) converted 吨 -> 千克 (x1000)"
    )
    assert [r[1] for r in fct(ws, "2025-06-01")] == [12_000, 8_500, 6_250]


def test_a_later_file_supersedes_and_the_same_file_twice_counts_once(corpus_run):
    ws = corpus_run.ws
    assert [(p, kg) for p, kg, *_ in fct(ws, "2025-08-01")] == sorted(REVISED_V2.items())
    assert [r[4] for r in fct(ws, "2025-09-01")] == [1, 1, 1]  # the copy added nothing
    assert [(p, kg) for p, kg, *_ in fct(ws, "2023-01-01")] == [(p, kg) for p, kg, *_ in fct(ws, "2023-02-01")]


# --------------------------------------------------------------------------- revision in place and as-of


def test_a_file_changed_in_place_is_a_revision_and_as_of_answers_before_and_after(corpus_run):
    ws = corpus_run.ws
    assert corpus_run.fct_after_first == sorted(REVISION_V1.items())  # what the first build served
    after = ws.query(
        "SELECT partner_code, quantity_kg FROM marts.fct_exports_monthly WHERE month = DATE '2025-11-01' ORDER BY 1"
    )
    assert after == sorted(REVISION_V2.items())  # the marts show the latest release

    before = ws.query(AS_OF, {"file": REVISED_IN_PLACE, "d": corpus_run.between})
    now = ws.query(AS_OF, {"file": REVISED_IN_PLACE, "d": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)})
    assert before == sorted(REVISION_V1.items())
    assert now == sorted(REVISION_V2.items())
    # an unchanged key is superseded too (the later release restates it), with the same figure
    history = ws.query(
        """SELECT partner_code, count(*), count(*) FILTER (WHERE is_current) FROM intermediate.int_customs_facts_history
           WHERE period_start = DATE '2025-11-01' GROUP BY 1 ORDER BY 1"""
    )
    assert history == [("116", 2, 1), ("304", 2, 1), ("502", 2, 1)]
