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
        with warehouse.connect_working(settings) as con:
            yield con

    def reader(self) -> DuckDBResource:
        """dagster-duckdb's resource on the working copy, for read queries in checks."""
        return DuckDBResource(database=str(self.settings().working_path), connection_config={"access_mode": "READ_ONLY"})
