from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
# Files the tests write are complete: no settle interval (the tests of it set their own).
os.environ.setdefault("CUSTOMS_SETTLE_SECONDS", "0")


@dataclass
class Workspace:
    """A landing directory, a warehouse and a Dagster home of a test's own, built through Dagster.

    The Dagster instance persists between builds, as $DAGSTER_HOME does between `make run`s: its
    record of the month partitions is what tells a build which months to rebuild.
    """

    landing: Path
    warehouse: Path

    @property
    def dagster_home(self) -> Path:
        return self.warehouse.parent.parent / "dagster_home"

    @property
    def settings(self):
        from dagster_project.lib.settings import Settings

        return Settings(landing_dir=self.landing, warehouse_path=self.warehouse)

    @property
    def working_copy(self) -> Path:
        """The file builds write (`<warehouse>.build`), as the project names it."""
        return self.settings.working_path

    def instance(self):
        from dagster import DagsterInstance

        self.dagster_home.mkdir(parents=True, exist_ok=True)
        return DagsterInstance.local_temp(str(self.dagster_home))

    def build(self, files: list[str] | None = None):
        from dagster_project.definitions import defs

        os.environ["CUSTOMS_LANDING_DIR"] = str(self.landing)
        os.environ["WAREHOUSE_PATH"] = str(self.warehouse)
        from dagster_project.defs.jobs import build_in_process

        # as the CLI builds: the ingest, then a run per range of months it left to build
        from dagster_project.lib.warehouse.working_copy import wait_for_working_copy

        with self.instance() as instance:
            result = build_in_process(defs.resolve_job_def("build_warehouse"), defs.resolve_asset_graph(), instance, files=files)
        # a publish copies the working copy back in the background: tests read and tamper with it
        wait_for_working_copy(self.settings)
        return result

    def query(self, sql: str, params=None, working: bool = False):
        path = self.working_copy if working else self.warehouse
        con = duckdb.connect(str(path), read_only=True)
        try:
            return con.execute(sql, params or {}).fetchall()
        finally:
            con.close()

    def scalar(self, sql: str, params=None, working: bool = False):
        rows = self.query(sql, params, working)
        return rows[0][0] if rows else None


def make_workspace(root: Path) -> Workspace:
    landing = root / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    return Workspace(landing=landing, warehouse=root / "wh" / "warehouse.duckdb")


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Workspace:
    monkeypatch.setenv("CUSTOMS_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "wh" / "warehouse.duckdb"))
    return make_workspace(tmp_path)


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory) -> Workspace:
    """The bundled sample (every file `make run` loads), built once for every test that only reads it."""
    from gacc_files import copy_sample, copy_sample_mirror, copy_sample_shapes

    saved = {k: os.environ.get(k) for k in ("CUSTOMS_LANDING_DIR", "WAREHOUSE_PATH")}
    ws = make_workspace(tmp_path_factory.mktemp("sample"))
    copy_sample(ws.landing)
    copy_sample_shapes(ws.landing)
    copy_sample_mirror(ws.landing)
    result = ws.build()
    assert result.success, "the sample build failed"
    ws.last_run_id = result.run_id
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return ws


@pytest.fixture
def sample_copy(sample_build, tmp_path) -> Workspace:
    """The sample build's served file and working copy, copied for a test that changes them
    (the landing files are the sample build's, read only)."""
    import shutil

    ws = Workspace(landing=sample_build.landing, warehouse=tmp_path / "wh" / "warehouse.duckdb")
    ws.warehouse.parent.mkdir(parents=True)
    shutil.copyfile(sample_build.warehouse, ws.warehouse)
    shutil.copyfile(sample_build.working_copy, ws.working_copy)
    return ws
