"""serving/analyst_report: the headline charts and a one-page HTML report.

Drawn again only when Dagster's record says something they show changed: growth months
built since the report was last materialised, or a renderer other than the one that drew it
(the asset's code version). Otherwise the files are kept, which saves importing matplotlib
and drawing (~1 s a build).
"""

import base64

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, DagsterInstance, MaterializeResult, MetadataValue, asset

from dagster_project.defs.partitions import code_versions, months_materialized_since
from dagster_project.defs.resources import WarehouseResource
from dagster_project.defs.serving.warehouse import served_warehouse
from dagster_project.lib.months import month_label
from dagster_project.lib.serving.charts import kept_report, render_report, renderer_version

REPORT_KEY = AssetKey(["serving", "analyst_report"])
# The tables the charts read (the small one when it holds the code, lib/serving/headline.py).
GROWTH_KEYS = [AssetKey(["marts", "export_growth_monthly"]), AssetKey(["marts", "export_growth_rare_earths"])]


def why_draw(instance: DagsterInstance, assets_def: AssetsDefinition) -> str | None:
    """Why the report must be drawn again according to Dagster's record; None: it need not."""
    changed, never = code_versions(instance, assets_def, [REPORT_KEY])
    if never:
        return "no report in Dagster's record"
    if changed:
        return "the renderer changed"
    months = months_materialized_since(instance, GROWTH_KEYS, REPORT_KEY)
    if months:
        return f"growth months built since the last report: {month_label(months)}"
    return None


@asset(
    key=REPORT_KEY,
    deps=[served_warehouse],
    group_name="serving",
    kinds={"matplotlib", "html"},
    code_version=renderer_version(),
    description=(
        "Charts of the headline series (85051110 world exports in tonnes with MoM/YoY; top partners over time, "
        "2025 export-control months shaded) as PNGs in data/report/ with a one-page report.html. Drawn again "
        "when growth months were built since, the renderer changed, or the files are missing or edited."
    ),
)
def analyst_report(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    out_dir = warehouse.settings().outputs_dir / "report"
    reason = why_draw(context.instance, context.assets_def)
    # Dagster records that the report was drawn, not that its files are still on disk as drawn:
    # data/report is a plain folder people open, copy and tidy up. report.json's hashes of the
    # three files (milliseconds to check) catch a file deleted or edited since.
    files = kept_report(out_dir) if reason is None else None
    if reason is None and files is None:
        reason = "report files missing or edited"
    if files is None:
        context.log.info(f"drawing the report: {reason}")
        con = warehouse.served_reader()
        try:
            files = render_report(con, out_dir)
        finally:
            con.close()
    else:
        context.log.info("no growth month built since the last report, same renderer, files as drawn: kept")

    def inline(path):
        return f"![{path.name}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"

    return MaterializeResult(
        metadata={
            "rendered": files.rendered,
            "report": MetadataValue.path(str(files.html)),
            "world_chart": MetadataValue.md(inline(files.world_png)),
            "partners_chart": MetadataValue.md(inline(files.partners_png)),
            "provinces_chart": MetadataValue.md(inline(files.provinces_png)),
            "imports_chart": MetadataValue.md(inline(files.imports_png)),
            "headline": MetadataValue.json(files.headline),
        }
    )
