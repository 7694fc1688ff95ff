import hashlib
import importlib.metadata
from graphlib import TopologicalSorter
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Mapping

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Config,
    MetadataValue,
    Output,
    PartitionsDefinition,
)
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from packaging import version

from dagster_project.lib.warehouse import working_copy as wh
from dagster_project.lib.quality.audit import record_check_results
from dagster_project.lib.serving.headline import headline_markdown, headline_rows
from dagster_project.lib.transform.months_to_build import (
    dbt_env,
    dbt_vars,
    is_first_build,
    is_monthly_model,
    mark_built,
    mark_months_built,
    month_ranges,
    project_fingerprint,
    record_months_to_verify,
    record_static_build,
    static_nodes,
    static_nodes_current,
    unbuilt_loads,
)
from dagster_project.lib.settings import DBT_PROJECT_DIR, VENV_BIN, Settings, dbt_executable, dbt_target_dir
from dagster_project.defs.partitions import CUSTOMS_MONTH, months_of_range
from dagster_project.defs.resources import DUCKDB_POOL
from dagster_project.defs.resources import WarehouseResource

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# dagster-dbt's parse under `dagster dev` (prepare_if_dev) runs the `dbt` it finds on PATH, and
# `make dev` runs the venv's dagster without activating the venv: put the venv's dbt first.
if Path(dbt_executable()).parent == VENV_BIN and str(VENV_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join(filter(None, [str(VENV_BIN), os.environ.get("PATH")]))

# `dagster dev` re-parses on start; the CLI, tests and CI use the manifest `make` prepares.
# A clean clone without one still loads: parse once here (about 10 s) rather than fail.
dbt_project.prepare_if_dev()
if not dbt_project.manifest_path.exists():
    dbt_project.preparer.prepare(dbt_project)


class CustomsDbtTranslator(DagsterDbtTranslator):
    """Asset keys follow the DuckDB schema (marts/fct_exports_monthly), groups the dbt folder."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or "main"
        return AssetKey([schema, dbt_resource_props["name"]])

    def get_partitions_def(self, dbt_resource_props: Mapping[str, Any]) -> PartitionsDefinition | None:
        """The models rebuilt month by month are partitioned by month; every other node is not."""
        if is_monthly_model(dbt_resource_props):
            return CUSTOMS_MONTH
        return None

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


TRANSLATOR = CustomsDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

MART_ROW_COUNT_SQL = "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() WHERE schema_name IN ('marts', 'intermediate', 'reference')"


class DbtBuildConfig(Config):
    """`full_refresh` rebuilds every month (after changing a model); otherwise only the months new loads touch."""

    full_refresh: bool = False


class _LeanDbtCli(DbtCliResource):
    """DbtCliResource without its two per-invocation start-up costs (~4 s together).

    dagster-dbt runs `dbt --version` in a subprocess to learn the version, and builds a dbt
    adapter in this process (importing dbt-core, loading the project and profile) that only
    its `fetch_row_counts()` / `fetch_column_metadata()` use. This project reads neither (row
    counts come from DuckDB below), and the dbt it runs is the venv's, whose version is the
    installed dbt-core's.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).parent == VENV_BIN:
            return version.parse(importlib.metadata.version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args):  # noqa: ANN001 - dagster-dbt's signature
        return None


def _lean(dbt: DbtCliResource) -> DbtCliResource:
    return _LeanDbtCli(**{name: getattr(dbt, name) for name in DbtCliResource.model_fields})


def _target_path(context: AssetExecutionContext) -> Path:
    """A target folder per invocation, named as dagster-dbt names them (cli.py prunes them by that name)."""
    return dbt_target_dir() / f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}"


PARTIAL_PARSE_CACHES = 20  # warehouses whose dbt parse state is kept (tests and benchmarks make many)


def _partial_parse_cache(settings: Settings) -> Path:
    """dbt's partial-parse state for this warehouse, kept in the dbt target folder.

    The profile holds the warehouse path, and a profile that differs from the one `make
    manifest` parsed with makes dbt parse the whole project again; so each warehouse keeps the
    state of its own last build, under a hash of its path (the most recent few are kept).
    """
    key = hashlib.sha256(str(settings.working_path).encode()).hexdigest()[:16]
    return dbt_target_dir() / "partial_parse_by_warehouse" / f"{key}.msgpack"


def _manifest_parse_state() -> Path:
    """The parse state `make manifest` left beside the manifest, which a warehouse's first build starts from.

    It was parsed with `make`'s WAREHOUSE_PATH: dbt partially parses from it when the build's
    profile is the same (`make run` with the default path: ~1.7 s less) and parses the whole
    project otherwise, as it would without it.
    """
    return dbt_project.manifest_path.with_name("partial_parse.msgpack")


def _keep_partial_parse(parsed: Path, cache: Path) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    shutil.copyfile(parsed, tmp)
    os.replace(tmp, cache)
    kept = sorted(cache.parent.glob("*.msgpack"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[PARTIAL_PARSE_CACHES:]:
        old.unlink(missing_ok=True)


def _discard_spill_files(settings: Settings) -> None:
    """Remove what a killed build left in DuckDB's spill folder (`<working copy>.tmp`, profiles.yml).

    DuckDB deletes its own spill files when it closes; a process killed mid-build cannot. Builds
    run one at a time and nothing has the working copy open here, so whatever is there is stale.
    """
    spill = settings.working_path.with_name(settings.working_path.name + ".tmp")
    if spill.is_dir():
        for leftover in spill.iterdir():
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
        try:
            spill.rmdir()  # DuckDB creates it again when it spills
        except OSError:
            pass


@contextmanager
def _environ(extra: dict[str, str]) -> Iterator[None]:
    """Set variables for a subprocess started inside the block (dagster-dbt copies os.environ)."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _dbt_manifest() -> dict:
    return json.loads(dbt_project.manifest_path.read_text())


GROWTH_ASSET = "marts/export_growth_monthly"
# The tables rebuilt month by month (materialized='incremental').
MONTHLY_ASSETS = {
    TRANSLATOR.get_asset_key(node).to_user_string()
    for node in _dbt_manifest()["nodes"].values()
    if is_monthly_model(node)
}
MONTHLY_KEYS = {AssetKey.from_user_string(key) for key in MONTHLY_ASSETS}


def _run_months(context: AssetExecutionContext) -> list | None:
    """The months of the run's customs_month partition range; None for a run without partitions."""
    # one month (dagster/partition) or a range (dagster/asset_partition_range_*: a backfill, the CLI)
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    key_range = context.partition_key_range
    return months_of_range(key_range.start, key_range.end)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=TRANSLATOR,
    pool=DUCKDB_POOL,
    # A backfill of a range of months (UI) is one run: one dbt build of those months.
    backfill_policy=BackfillPolicy.single_run(),
)
def customs_dbt_models(context: AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Seeds, staging, intermediate and marts, with their dbt tests as asset checks.

    The incremental models are partitioned by month (customs_month): a run of a partition range
    rebuilds and tests those months (and the growth metrics of the months that compare with
    them); the other nodes have no partitions and are built in every run that selects them.
    When the dbt project's files are those of the last build, a run of every node leaves out
    what depends on them alone (seeds, views, the dims built from seeds, their tests and the
    unit tests). The first build of a warehouse builds every month.
    """
    settings = warehouse.settings()
    selected = set(context.selected_asset_keys)
    monthly_selected = selected & MONTHLY_KEYS
    run_months = _run_months(context)
    if run_months is None and monthly_selected:
        # Dagster refuses to record a partitioned asset's output in a run without partitions,
        # after the step ran: refuse before dbt runs.
        raise RuntimeError(
            f"{', '.join(sorted(k.to_user_string() for k in monthly_selected))} are partitioned by month "
            "(customs_month): materialise a month or a range of months, or run `python -m dagster_project.cli build`"
        )
    wh.ensure_working_copy(settings)
    args = ["build"]
    fingerprint = project_fingerprint(Path(dbt_project.project_dir))
    static = static_nodes(_dbt_manifest())
    # Every node that depends on the loads (i.e. the automatic build, not a pick from the UI).
    every_node = UNPARTITIONED_KEYS <= selected
    with wh.connect_working(settings) as con:
        pending = unbuilt_loads(con)
        first_build = is_first_build(con)  # not months_pending: its month list is a scan of raw rows
        # Every month: a model change (full refresh) or the warehouse's first build. A first build
        # with some of the month-by-month tables already there (a model new to the project, a
        # table dropped) is a full refresh too: rebuilding every month of an existing incremental
        # table is a delete and insert of all of it, which ran out of the 1 GB default at the
        # national size, where creating the table anew (as a first build does) fits.
        full_refresh = config.full_refresh or (first_build and run_months is not None)
        if full_refresh:
            variables = None
        else:
            variables = dbt_vars(run_months or [])
        skip_static = variables is not None and every_node and static_nodes_current(con, fingerprint, static)
        record_months_to_verify(con, context.run.run_id, variables)
    if full_refresh:
        args.append("--full-refresh")
    elif variables is not None:
        context.log.info(f"incremental build of {len(variables['months'])} month(s): {month_ranges(variables['months'])}")
    if skip_static:
        # `empty`: leave out exactly these nodes, not the tests of the models built from them
        # (e.g. fct_exports_monthly's relationships to dim_partner still run).
        args += ["--exclude", " ".join([*static.names, "resource_type:unit_test"]), "--indirect-selection", "empty"]
        context.log.info(f"dbt project unchanged since the last build: {len(static.names)} seeds, views, seed-only models and their tests, and the unit tests, left out")

    _discard_spill_files(settings)
    target_path = _target_path(context)
    cache = _partial_parse_cache(settings)
    seed = cache if cache.exists() else _manifest_parse_state()
    if seed.exists():
        target_path.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(seed, target_path / "partial_parse.msgpack")
        except OSError:  # pruned meanwhile: dbt parses the whole project
            pass
    with _environ(dbt_env(variables)):
        invocation = _lean(dbt).cli(args, context=context, raise_on_error=False, target_path=target_path)
    # Collect the events first: row counts and previews are read from DuckDB once dbt has
    # closed the file (a second connection while dbt writes would hit DuckDB's lock).
    events = list(invocation.stream())
    succeeded = invocation.is_successful()
    parsed = target_path / "partial_parse.msgpack"
    if parsed.exists():
        try:
            _keep_partial_parse(parsed, cache)
        except OSError as exc:  # a cache: never fails a build (another build may be pruning it)
            context.log.warning(f"could not keep dbt's parse state: {exc}")

    checks = [e for e in events if isinstance(e, AssetCheckResult)]
    with wh.connect_working(settings) as con:
        if succeeded:
            if monthly_selected != MONTHLY_KEYS:
                pass  # the history or facts of some month were not rebuilt: no load is built yet
            elif variables is None:  # every month (first build, full refresh)
                mark_built(con, pending, context.run.run_id)
            else:
                # only the loads whose every month is now built (this run or an earlier one)
                done = mark_months_built(con, pending, run_months, context.run.run_id)
                context.log.info(f"{len(done)} load(s) now built in every month; {len(pending) - len(done)} wait for other months")
            if not skip_static and every_node:
                record_static_build(con, fingerprint, context.run.run_id)
        record_check_results(
            con,
            context.run.run_id,
            [
                (f"dbt:{c.check_name}", c.asset_key.to_user_string(), c.severity.value, c.passed,
                 str(c.metadata.get("dagster_dbt/failed_row_count", MetadataValue.int(0)).value) + " failing rows", c.description)
                for c in checks
            ],
        )
        counts = {f"{s}/{t}": n for s, t, n in con.execute(MART_ROW_COUNT_SQL).fetchall()}
        headline = headline_markdown(headline_rows(con)) if "marts/export_growth_monthly" in counts else ""

    months_built = "every month" if variables is None else month_ranges(variables["months"]) or "none"
    growth_built = "every month" if variables is None else month_ranges(variables["growth_months"]) or "none"
    outputs: list[Output] = []
    for event in events:
        if isinstance(event, Output):
            key = context.asset_key_for_output(event.output_name).to_user_string()
            metadata = {}
            if key in MONTHLY_ASSETS:
                metadata["months_built"] = growth_built if key == GROWTH_ASSET else months_built
            if key in counts:
                metadata["dagster/row_count"] = counts[key]
            if key == "marts/export_growth_monthly" and headline:
                metadata["headline_85051110"] = MetadataValue.md(headline)
            outputs.append(event.with_metadata({**event.metadata, **metadata}))
    if skip_static and succeeded:
        # The marts left out are as the last build made them; serving/warehouse waits for every
        # mart's output, so they report in, marked as not rebuilt.
        built = {o.output_name for o in outputs}
        for key in context.selected_asset_keys:
            name = context.assets_def.get_output_name_for_asset_key(key)
            if key.path[0] == "marts" and name not in built:
                outputs.append(Output(None, output_name=name, metadata={
                    "rebuilt": False,
                    "why": "the dbt project's files are those of the last build of this model and its seeds: kept as built",
                }))
    # Dagster wants a multi-asset's outputs in dependency order, then the check results.
    rank = {key: i for i, key in enumerate(TopologicalSorter(context.assets_def.asset_deps).static_order())}
    outputs.sort(key=lambda o: rank.get(context.asset_key_for_output(o.output_name), 0))
    yield from outputs
    yield from (e for e in events if not isinstance(e, Output))
    if not succeeded:
        # BI readers keep the last good marts, but learn that this run failed and why.
        wh.publish_audit_only(settings)
        error = invocation.get_error() or RuntimeError("dbt build failed")
        if "Out of Memory Error" in str(error):
            limit = os.environ.get("CUSTOMS_DUCKDB_MEMORY_LIMIT", "1GB")
            raise RuntimeError(
                f"dbt ran out of DuckDB memory (CUSTOMS_DUCKDB_MEMORY_LIMIT={limit}, spilling to {settings.working_path}.tmp): "
                "raise the limit, e.g. CUSTOMS_DUCKDB_MEMORY_LIMIT=8GB make run; a national-size warehouse "
                "(~50M rows) needs more than the default 1GB (see README, 'Size and memory')"
            ) from error
        raise error


# The dbt nodes without partitions (seeds, staging, dims, views, cumulative figures).
UNPARTITIONED_KEYS = set(customs_dbt_models.keys) - MONTHLY_KEYS
