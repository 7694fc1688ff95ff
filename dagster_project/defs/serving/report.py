"""serving/analyst_report: the headline charts and a one-page HTML report."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from dagster_project.defs.resources import WarehouseResource
from dagster_project.defs.serving.warehouse import served_warehouse


@asset(
    key=["serving", "analyst_report"],
    deps=[served_warehouse],
    group_name="serving",
    kinds={"matplotlib", "html"},
    description=(
        "Charts of the headline series (85051110 world exports in tonnes with MoM/YoY; top partners over time, "
        "2025 export-control months shaded) as PNGs in data/report/ with a one-page report.html."
    ),
)
def analyst_report(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    import base64

    from dagster_project.lib.serving.charts import render_report

    out_dir = warehouse.settings().outputs_dir / "report"
    con = warehouse.served_reader()
    try:
        files = render_report(con, out_dir)
    finally:
        con.close()

    def inline(path):
        return f"![{path.name}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"

    if not files.rendered:
        context.log.info("charts are up to date with their inputs (same rows, same renderer): not drawn again")
    return MaterializeResult(
        metadata={
            "rendered": files.rendered,
            "report": MetadataValue.path(str(files.html)),
            "world_chart": MetadataValue.md(inline(files.world_png)),
            "partners_chart": MetadataValue.md(inline(files.partners_png)),
            "headline": MetadataValue.json(files.headline),
        }
    )


