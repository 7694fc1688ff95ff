"""The CLI's event log (lib/event_log.py): Dagster's SQLite files, written through open connections.

Runs are materialised through the instance the CLI builds with, then read back through a stock
DagsterInstance (what `dagster dev` uses) of the same DAGSTER_HOME: every event, the partitions
materialised and the check results must be there. Everything is real: a temp DAGSTER_HOME with
the project's dagster.yaml, Dagster's `materialize`.
"""

from __future__ import annotations

import pytest
from dagster import (
    AssetCheckResult,
    AssetKey,
    DagsterInstance,
    DailyPartitionsDefinition,
    asset,
    asset_check,
    materialize,
)

from dagster_project import cli
from dagster_project.lib.event_log import OPEN_SHARDS, PooledSqliteEventLogStorage

DAYS = DailyPartitionsDefinition(start_date="2025-01-01", end_date="2025-01-08")


@asset(partitions_def=DAYS)
def daily_figures(context) -> int:
    return len(context.partition_keys)


@asset_check(asset=daily_figures)
def daily_figures_present() -> AssetCheckResult:
    return AssetCheckResult(passed=True, metadata={"rows": 1})


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    cli.dagster_home()  # created with the project's dagster.yaml
    return home


def test_the_cli_writes_events_a_stock_instance_reads(home):
    run_ids = []
    with cli._instance() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        for day in ("2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04", "2025-01-05", "2025-01-06"):
            result = materialize([daily_figures, daily_figures_present], instance=instance, partition_key=day)
            assert result.success
            run_ids.append(result.run_id)
        written = {run_id: [e.dagster_event_type for e in instance.all_logs(run_id)] for run_id in run_ids}
        assert len(storage._engines) <= OPEN_SHARDS  # the index and the latest runs, not one per run

    with DagsterInstance.get() as stock:
        assert type(stock.event_log_storage).__name__ == "SqliteEventLogStorage"
        for run_id in run_ids:
            assert stock.get_run_by_id(run_id).is_success
            assert [e.dagster_event_type for e in stock.all_logs(run_id)] == written[run_id]
        key = AssetKey("daily_figures")
        assert stock.get_materialized_partitions(key) == {f"2025-01-0{d}" for d in range(1, 7)}
        check = stock.event_log_storage.get_latest_asset_check_execution_by_key([daily_figures_present.check_key])
        assert check[daily_figures_present.check_key].run_id == run_ids[-1]


def test_a_dagster_yaml_with_its_own_storage_is_used_as_written(home):
    runs = home / "elsewhere"
    (home / "dagster.yaml").write_text(
        (home / "dagster.yaml").read_text() + f"\nstorage:\n  sqlite:\n    base_dir: {runs}\n"
    )
    with cli._instance() as instance:
        assert not isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert materialize([daily_figures], instance=instance, partition_key="2025-01-07").success
    assert (runs / "history" / "runs" / "index.db").exists()
