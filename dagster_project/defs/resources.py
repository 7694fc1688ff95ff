from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import duckdb
from dagster import ConfigurableResource
from dagster_duckdb import DuckDBResource

from ..lib import warehouse
from ..lib.settings import Settings, export_to_environ


class WarehouseResource(ConfigurableResource):
    """The DuckDB working copy every asset writes, and the served file BI tools read.

    Paths come from $WAREHOUSE_PATH and $CUSTOMS_LANDING_DIR when the run starts (not when the
    code location loads), so a test or a user can point a run at another warehouse.
    """

    def settings(self) -> Settings:
        return export_to_environ()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        settings = self.settings()
        warehouse.ensure_working_copy(settings)
        with DuckDBResource(database=str(settings.working_path)).get_connection() as con:
            yield con
