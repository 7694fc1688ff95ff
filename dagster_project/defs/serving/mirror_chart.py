"""serving/mirror_chart: China-reported against partner-reported magnet trade (data/report/mirror_850511.png).

Drawn again when the mirror table was built since the chart was last drawn, when the drawing code
changed, or when the file is missing; otherwise kept (matplotlib is not even imported).
"""

import base64
import hashlib
from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from dagster_project.defs.partitions import code_versions, last_materialized_at
from dagster_project.defs.resources import WarehouseResource
from dagster_project.defs.serving.warehouse import served_warehouse
from dagster_project.lib.serving import mirror_chart

CHART_KEY = AssetKey(["serving", "mirror_chart"])
MIRROR_KEY = AssetKey(["marts", "mirror_trade_monthly"])
CODE_VERSION = hashlib.sha256(Path(mirror_chart.__file__).read_bytes()).hexdigest()[:16]


@asset(
    key=CHART_KEY,
    deps=[served_warehouse],
    group_name="serving",
    kinds={"matplotlib"},
    code_version=CODE_VERSION,
    description=(
        "Chart of China-reported against partner-reported magnet trade (HS 850511, tonnes per month) for the United "
        "States, the EU (the EU-27 members whose Comtrade files are loaded, named) and Japan, from "
        "marts.mirror_trade_monthly: data/report/mirror_850511.png."
    ),
)
def mirror_trade_chart(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    path = warehouse.settings().outputs_dir / "report" / mirror_chart.MIRROR_PNG
    changed, never = code_versions(context.instance, context.assets_def, [CHART_KEY])
    drawn_at = last_materialized_at(context.instance, CHART_KEY)
    built_at = last_materialized_at(context.instance, MIRROR_KEY)
    reason = ("never drawn" if never else "the drawing code changed" if changed else "file missing" if not path.exists()
              else "the mirror table was built since" if built_at is not None and (drawn_at or 0) < built_at else None)
    if reason:
        context.log.info(f"drawing the mirror chart: {reason}")
        con = warehouse.served_reader()
        try:
            panels = mirror_chart.load_panels(con)
        finally:
            con.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        mirror_chart.draw_mirror_chart(panels, path)
    image = f"![{path.name}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"
    return MaterializeResult(metadata={"rendered": bool(reason), "chart": MetadataValue.md(image),
                                       "path": MetadataValue.path(str(path))})
