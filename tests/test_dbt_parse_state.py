"""A warehouse's first build starts dbt from the parse state `make manifest` made, when its profile matches.

dbt keeps a parse state per profile; the build's profile holds the warehouse path. `make run` on a
fresh clone parses the project once (`make manifest`) with the default path, and the first build
of that warehouse then only re-reads what changed. Real dbt, real Dagster job, a temp warehouse:
the parse state is made with `dbt parse` for that warehouse, as `make manifest` makes it for the default.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gacc_files import copy_sample

from dagster_project.defs.transform import dbt_assets
from dagster_project.lib.settings import DBT_PROJECT_DIR, dbt_executable, dbt_target_dir


def _dbt_logs_since(target: Path, before: set[Path]) -> list[str]:
    folders = [p for p in target.glob("customs_dbt_models-*") if p not in before]
    return [(f / "dbt.log").read_text(errors="replace") for f in folders if (f / "dbt.log").exists()]


def test_the_first_build_parses_from_the_manifest_parse_state(workspace, tmp_path, monkeypatch):
    copy_sample(workspace.landing, months=["202505", "202506"])
    seed_dir = tmp_path / "manifest_target"
    env = {**os.environ, "WAREHOUSE_PATH": str(workspace.warehouse)}
    subprocess.run([dbt_executable(), "parse", "--quiet", "--profiles-dir", ".", "--target-path", str(seed_dir)],
                   cwd=DBT_PROJECT_DIR, env=env, check=True)
    seed = seed_dir / "partial_parse.msgpack"
    assert seed.exists()
    monkeypatch.setattr(dbt_assets, "_manifest_parse_state", lambda: seed)
    target = dbt_target_dir()
    before = set(target.glob("customs_dbt_models-*"))

    result = workspace.build()

    assert result.success
    logs = _dbt_logs_since(target, before)
    assert len(logs) == 1  # one range run (2025-05..2025-06), one dbt build
    assert "Starting full parse" not in logs[0] and "Unable to do partial parsing" not in logs[0]
    assert workspace.scalar("SELECT sum(quantity_kg) FROM marts.fct_exports_monthly "
                            "WHERE hs8 = '85051110' AND month = DATE '2025-06-01'") == 3_188_000


def test_a_parse_state_for_another_warehouse_only_costs_a_full_parse(workspace, monkeypatch):
    copy_sample(workspace.landing, months=["202505"])
    other = dbt_target_dir() / "partial_parse.msgpack"  # `make manifest`'s, for data/warehouse.duckdb
    monkeypatch.setattr(dbt_assets, "_manifest_parse_state", lambda: other)
    target = dbt_target_dir()
    before = set(target.glob("customs_dbt_models-*"))

    result = workspace.build()

    assert result.success
    [log] = _dbt_logs_since(target, before)
    if other.exists():  # present after `make test`'s `make manifest`
        assert "Unable to do partial parsing because profile has changed" in log
    assert workspace.scalar("SELECT sum(quantity_kg) FROM marts.fct_exports_monthly "
                            "WHERE hs8 = '85051110' AND month = DATE '2025-05-01'") == 1_238_000
