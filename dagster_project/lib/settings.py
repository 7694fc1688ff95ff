"""Where things live. One environment variable per path, resolved to absolute paths once.

dbt and Dagster must open the very same DuckDB file; dbt runs with its project folder as
working directory, so a relative path would point somewhere else. `export_to_environ()`
writes the absolute paths back into the environment that dbt's subprocess inherits.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt"
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"

# The storage format of every file we write. DuckDB 1.5 would otherwise pick its default;
# v1.1.0 is readable by DuckDB >= 1.1 (`make compat` opens the served file in 1.1, 1.2, 1.4
# and 1.5), which covers the JDBC, Node and Python drivers that DBeaver, Metabase, Superset
# and Evidence ship today.
STORAGE_VERSION = "v1.1.0"

# DuckDB's memory for the Dagster process's connections to the working copy (ingest, checks):
# beyond it, DuckDB spills to <working copy>.tmp. dbt has its own limit (dbt/profiles.yml).
DUCKDB_MEMORY_LIMIT = os.environ.get("CUSTOMS_DUCKDB_MEMORY_LIMIT", "1GB")


# The project's venv: `make` runs its python without activating it, so its `bin` may not be on PATH.
VENV_BIN = Path(sys.executable).parent


def dbt_executable() -> str:
    """The dbt installed beside this interpreter (the project's venv), whatever PATH says."""
    venv_dbt = VENV_BIN / "dbt"
    return str(venv_dbt) if venv_dbt.exists() else (shutil.which("dbt") or "dbt")


def dbt_target_dir() -> Path:
    """dbt's target folder ($DBT_TARGET_PATH, default dbt/target): the manifest, and the folder
    of every dagster-dbt invocation and of the per-warehouse parse state."""
    base = Path(os.environ.get("DBT_TARGET_PATH") or "target")
    return base if base.is_absolute() else DBT_PROJECT_DIR / base


def _resolve(value: str | None, default: Path) -> Path:
    path = Path(value) if value else default
    if not path.is_absolute():
        path = PROJECT_ROOT / path if not value else Path.cwd() / path
    return path.resolve()


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    warehouse_path: Path  # the served file that BI tools read

    @property
    def data_dir(self) -> Path:
        return self.warehouse_path.parent

    @property
    def working_path(self) -> Path:
        """The file every build writes; published over `warehouse_path` when a build is good."""
        return self.warehouse_path.with_name(self.warehouse_path.name + ".build")

    @property
    def staging_dir(self) -> Path:
        """Scratch space for transcoded extracts (never the landing directory)."""
        return self.warehouse_path.with_name(self.warehouse_path.name + ".tmp")

    def dbt_target(self, name: str) -> Path:
        """dbt's target folder for one kind of dbt invocation on this warehouse (`<warehouse>.dbt/<name>`).

        One folder per kind, overwritten by each invocation: its size stays that of one run
        (dbt's own `--target-path`), and dbt's partial-parse state in it is this warehouse's.
        """
        return self.warehouse_path.with_name(self.warehouse_path.name + ".dbt") / name

    @property
    def outputs_dir(self) -> Path:
        """Docs, Parquet exports, charts and data docs live beside the served file."""
        return self.warehouse_path.parent


def get_settings() -> Settings:
    return Settings(
        landing_dir=_resolve(os.environ.get("CUSTOMS_LANDING_DIR"), PROJECT_ROOT / "data" / "landing"),
        warehouse_path=_resolve(os.environ.get("WAREHOUSE_PATH"), PROJECT_ROOT / "data" / "warehouse.duckdb"),
    )


def export_to_environ(settings: Settings | None = None) -> Settings:
    """Make the resolved absolute paths visible to subprocesses (dbt)."""
    settings = settings or get_settings()
    os.environ["CUSTOMS_LANDING_DIR"] = str(settings.landing_dir)
    os.environ["WAREHOUSE_PATH"] = str(settings.warehouse_path)
    return settings
