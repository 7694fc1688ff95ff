"""Month arithmetic (lib/months.py) and which months a build must rebuild (lib/transform/months_to_build.py)."""

from __future__ import annotations

import datetime as dt

import duckdb

from dagster_project.lib.months import (
    add_months,
    contiguous_runs,
    growth_months,
    key_month,
    month_key,
    month_label,
    months_around,
    months_between,
)
from dagster_project.lib.transform.months_to_build import latest_load_by_month, loaded_month_span, months_to_build
from dagster_project.lib.warehouse.database import create_raw_tables

D = dt.date


def test_month_arithmetic():
    assert add_months(D(2024, 12, 1), 1) == D(2025, 1, 1) and add_months(D(2025, 1, 1), -13) == D(2023, 12, 1)
    assert month_key(D(2025, 6, 1)) == "2025-06" and key_month("2025-06") == key_month("2025-06-01") == D(2025, 6, 1)
    assert months_between(D(2024, 11, 1), D(2025, 2, 1)) == [D(2024, 11, 1), D(2024, 12, 1), D(2025, 1, 1), D(2025, 2, 1)]
    assert months_between(D(2025, 2, 1), D(2025, 1, 1)) == []
    assert months_around([D(2025, 1, 1)], 1, 1) == [D(2024, 12, 1), D(2025, 1, 1), D(2025, 2, 1)]
    months = [D(2025, 6, 1), D(2025, 3, 1), D(2025, 4, 1), D(2024, 12, 1), D(2025, 1, 1)]
    assert contiguous_runs(months) == [(D(2024, 12, 1), D(2025, 1, 1)), (D(2025, 3, 1), D(2025, 4, 1)), (D(2025, 6, 1), D(2025, 6, 1))]
    assert month_label(months) == "2024-12..2025-01, 2025-03..2025-04, 2025-06"
    assert month_label(["2025-06-01", "2025-07"]) == "2025-06..2025-07" and month_label([]) == "none"


def test_growth_months_reach_december_of_the_next_year():
    """MoM compares with the month before, YoY and the year to date with the year before."""
    months = growth_months(D(2025, 6, 1), D(2025, 6, 1))
    assert months[0] == D(2025, 6, 1) and months[-1] == D(2026, 12, 1) and len(months) == 19
    assert D(2025, 5, 1) not in months


def test_months_to_build_are_those_loaded_since_their_last_build():
    loaded = {D(2025, 1, 1): 100.0, D(2025, 2, 1): 200.0, D(2025, 3, 1): 300.0}
    built = {D(2025, 1, 1): 150.0, D(2025, 2, 1): 150.0}  # February loaded again after its build; March never built
    assert months_to_build(loaded, built) == [D(2025, 2, 1), D(2025, 3, 1)]
    assert months_to_build(loaded, {m: 1000.0 for m in loaded}) == []


def test_each_months_latest_load_comes_from_the_load_months_mapping():
    con = duckdb.connect()
    create_raw_tables(con)
    assert loaded_month_span(con) is None and latest_load_by_month(con) == {}
    con.execute("""INSERT INTO raw.customs_loads (load_id, load_seq, file_path, file_sha256, file_size_bytes, flow, encoding,
                   header_language, currency, dimensions, period_source, period_start, period_end, row_count, loaded_at)
                   VALUES ('a', 1, 'a.csv', 'x', 1, 'exports', 'utf-8', 'en', 'USD', 'hs8,partner', 'column', '2025-01-01', '2025-02-01', 2, '2025-03-01 00:00:00'),
                          ('b', 2, 'b.csv', 'y', 1, 'exports', 'utf-8', 'en', 'USD', 'hs8,partner', 'column', '2025-02-01', '2025-02-01', 1, '2025-04-01 00:00:00')""")
    con.execute("INSERT INTO raw.customs_load_months VALUES ('a', '2025-01-01'), ('a', '2025-02-01'), ('b', '2025-02-01')")
    latest = latest_load_by_month(con)
    # loaded_at is UTC: its Unix time is what Dagster's materialisation timestamps are compared with
    utc = dt.timezone.utc
    assert latest == {D(2025, 1, 1): dt.datetime(2025, 3, 1, tzinfo=utc).timestamp(), D(2025, 2, 1): dt.datetime(2025, 4, 1, tzinfo=utc).timestamp()}
    assert loaded_month_span(con) == (D(2025, 1, 1), D(2025, 2, 1))


def test_a_new_version_of_a_file_touches_the_months_its_previous_version_held():
    """a.csv held January and February; its new version holds February only: January changes too
    (the new version withdraws its figures), and must be rebuilt."""
    con = duckdb.connect()
    create_raw_tables(con)
    con.execute("""INSERT INTO raw.customs_loads (load_id, load_seq, file_path, file_sha256, file_size_bytes, flow, encoding,
                   header_language, currency, dimensions, period_source, period_start, period_end, row_count, loaded_at)
                   VALUES ('a1', 1, 'exports/a.csv', 'x', 1, 'exports', 'utf-8', 'en', 'USD', 'hs8,partner', 'column', '2025-01-01', '2025-02-01', 2, '2025-03-01 00:00:00'),
                          ('b', 2, 'exports/b.csv', 'y', 1, 'exports', 'utf-8', 'en', 'USD', 'hs8,partner', 'column', '2025-03-01', '2025-03-01', 1, '2025-04-01 00:00:00'),
                          ('a2', 3, 'exports/a.csv', 'z', 1, 'exports', 'utf-8', 'en', 'USD', 'hs8,partner', 'column', '2025-02-01', '2025-02-01', 1, '2025-05-01 00:00:00')""")
    con.execute("INSERT INTO raw.customs_load_months VALUES ('a1', '2025-01-01'), ('a1', '2025-02-01'), ('b', '2025-03-01'), ('a2', '2025-02-01')")
    utc = dt.timezone.utc
    at = {day: dt.datetime(2025, day, 1, tzinfo=utc).timestamp() for day in (4, 5)}
    assert latest_load_by_month(con) == {D(2025, 1, 1): at[5], D(2025, 2, 1): at[5], D(2025, 3, 1): at[4]}
