import os
import threading
from contextlib import contextmanager
from typing import Iterator

import duckdb
from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from dagster_project.lib.warehouse import working_copy as wh
from dagster_project.lib.warehouse.build_lock import CLI_PID_TAG, BuildLock
from dagster_project.lib.warehouse.database import open_db
from dagster_project.lib.settings import Settings, export_to_environ

# Every step that opens the DuckDB working copy for writing runs in this pool; dagster.yaml
# limits it to one at a time (DuckDB allows one writing process per file).
DUCKDB_POOL = "duckdb_warehouse"

# Imported by a step that runs late in the build, and slow to import (seconds): a run that will
# need them imports them in a background thread from its start, while this process mostly waits
# for the ingest's DuckDB statements and the dbt subprocess. The step's own `import` then finds
# the module loaded (or waits for the import in progress: Python's per-module import lock).
PREFETCH = {
    "quality_gate": ("great_expectations",),  # ~2 s
    "mirror_gate": ("great_expectations",),
    "serving__analyst_report": ("matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.ticker"),  # ~0.4 s
}


def _import_quietly(names: tuple[str, ...]) -> None:
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # the step imports it again and reports the error where it belongs
            return


def prefetch_imports(step_keys: list[str] | None) -> threading.Thread | None:
    """Start importing, in a daemon thread, the slow modules of the steps `step_keys` (None: all)."""
    names = tuple(
        name for step, modules in PREFETCH.items() if step_keys is None or step in step_keys for name in modules
    )
    if not names:
        return None
    if "great_expectations" in names:
        # great_expectations imports sqlalchemy.orm, whose import registers an inspector of every
        # object before its module is complete; Dagster's pool claim in this (main) thread calls
        # sqlalchemy's inspect() meanwhile and failed with "partially initialized module
        # 'sqlalchemy.orm.exc'" when a run's first step claimed its pool slot at once (the runs
        # after the ingest run). Import sqlalchemy.orm here first (~0.1 s), in this thread.
        import sqlalchemy.orm  # noqa: F401 - imported for its side effect, here in this thread
    thread = threading.Thread(target=_import_quietly, args=(names,), name="prefetch-imports", daemon=True)
    thread.start()
    return thread


class WarehouseResource(ConfigurableResource):
    """The DuckDB working copy every asset writes, and the served file BI tools read.

    Paths come from $WAREHOUSE_PATH and $CUSTOMS_LANDING_DIR when the run starts (not when the
    code location loads), so a test or a user can point a run at another warehouse.
    """

    _run_lock: BuildLock | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Once per run with the in-process executor, when the run starts.
        run = context.run
        if run is None:
            return
        prefetch_imports(run.step_keys_to_execute)
        self._take_turn(context)

    def _take_turn(self, context: InitResourceContext) -> None:
        """Hold $DAGSTER_HOME's build lock for the whole run, so that runs, not just steps, take
        turns on the working copy: what a run publishes is what its own gate checked.

        A CLI build holds the lock for all its runs (they carry its pid); a run launched from the
        UI, a sensor or the schedule waits here, before any step claims its pool slot, for the
        build or run that holds it. An ephemeral instance (tests) has no home to share.
        """
        home = context.instance.root_directory if context.instance else None
        if not home or context.run.tags.get(CLI_PID_TAG) == str(os.getpid()):
            return
        lock = BuildLock.for_dagster_home(home)
        lock.acquire(on_wait=lambda pid: context.log.info(
            f"waiting for the build that holds {lock.path} (pid {pid or 'unknown'}) to finish: "
            "one build writes the warehouse at a time"))
        self._run_lock = lock

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._run_lock is not None:
            self._run_lock.release()
            self._run_lock = None

    def settings(self) -> Settings:
        return export_to_environ()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        settings = self.settings()
        wh.ensure_working_copy(settings)
        with wh.connect_working(settings) as con:
            yield con

    def served_reader(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the served file, as BI tools open it (the caller closes it)."""
        return open_db(self.settings().warehouse_path, read_only=True)
