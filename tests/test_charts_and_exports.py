"""Charts + HTML report, Parquet export of the marts, static dbt docs.

The warehouse is a tiny one built here by SQL (no dbt), so these run in seconds. The serving
assets run through Dagster (`materialize`, an ephemeral instance): whether they write is
decided from Dagster's record, which small stand-ins of the dbt assets write as dbt's runs do.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import threading
from pathlib import Path

import duckdb
import matplotlib.image
import pytest

from dagster_project.lib.serving.charts import PARTNERS, REPORT_HTML, REPORT_JSON, render_report, renderer_version
from dagster_project.lib.serving.parquet_export import export_marts, export_table, quote_ident, quote_literal

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ODD_TABLE = 'odd name\'s "t"'  # quoting of identifiers and paths

TINY_WAREHOUSE_SQL = f"""
CREATE SCHEMA marts;
CREATE SCHEMA staging;

CREATE TABLE marts.dim_partner AS
SELECT * FROM (VALUES
    ('502', 'USA', 'United States', '美国', 'North America', false),
    ('304', 'DEU', 'Germany', '德国', 'Europe', true),
    ('133', 'KOR', 'South Korea', '韩国', 'Asia', false),
    ('116', 'JPN', 'Japan', '日本', 'Asia', false),
    ('141', 'VNM', 'Vietnam', '越南', 'Asia', false),
    ('111', 'IND', 'India', '印度', 'Asia', false),
    ('305', 'FRA', 'France', '法国', 'Europe', true)
) AS t(partner_code, partner_iso3, partner_name_en, partner_name_zh, region, is_eu);

CREATE TABLE marts.dim_month AS
SELECT CAST(m AS DATE) AS month, year(m)::INTEGER AS year, month(m)::INTEGER AS month_of_year,
       strftime(m, '%Y-%m') AS month_label
FROM range(DATE '2024-01-01', DATE '2026-01-01', INTERVAL 1 MONTH) r(m);

-- a dip in Apr-Jun 2025 like the one the export controls caused
CREATE TABLE marts.fct_exports_monthly AS
SELECT d.month, c.hs8, p.partner_code, p.partner_iso3,
       CAST(round((c.base * (1 + p.k) + 37 * d.month_of_year + 11 * (d.year - 2024))
             * CASE WHEN d.month IN (DATE '2025-04-01', DATE '2025-05-01', DATE '2025-06-01') THEN 0.3 ELSE 1 END, 3)
            AS DECIMAL(38, 3)) AS quantity_kg,
       CAST(CASE WHEN p.partner_iso3 = 'FRA' AND d.month_of_year = 2 THEN NULL
                 ELSE 50.25 * (c.base * (1 + p.k)) END AS DECIMAL(38, 2)) AS value_usd
FROM marts.dim_month d
CROSS JOIN (VALUES ('85051110', 90000.0), ('85051190', 12000.0)) c(hs8, base)
CROSS JOIN (SELECT *, row_number() OVER (ORDER BY partner_code) / 10.0 AS k FROM marts.dim_partner) p;

CREATE TABLE marts.export_growth_monthly AS
WITH base AS (
    SELECT month, hs8, partner_iso3, quantity_kg, value_usd FROM marts.fct_exports_monthly
    UNION ALL
    SELECT month, hs8, 'WLD', sum(quantity_kg), sum(value_usd) FROM marts.fct_exports_monthly GROUP BY ALL
)
SELECT month, hs8, partner_iso3, quantity_kg, value_usd,
       100 * (quantity_kg / lag(quantity_kg) OVER w - 1)::DOUBLE AS mom_pct,
       100 * (quantity_kg / lag(quantity_kg, 12) OVER w - 1)::DOUBLE AS yoy_pct,
       CAST(NULL AS DECIMAL(38, 3)) AS ytd_quantity_kg,
       CAST(NULL AS DOUBLE) AS ytd_yoy_pct,
       (value_usd / quantity_kg)::DOUBLE AS unit_value_usd_per_kg,
       CAST(NULL AS DOUBLE) AS share_of_world_pct
FROM base
WINDOW w AS (PARTITION BY hs8, partner_iso3 ORDER BY month);

CREATE TABLE marts.{quote_ident(ODD_TABLE)} AS
SELECT month, 'it''s' AS "select", 1 AS "Weird Col" FROM marts.dim_month;

CREATE TABLE marts.fct_exports_cumulative (month DATE, hs8 VARCHAR, quantity_kg DECIMAL(38, 3));

-- exported as the tables are: a view in marts (the BI views); not exported: a table of another schema
CREATE VIEW marts.v_world AS SELECT * FROM marts.export_growth_monthly WHERE partner_iso3 = 'WLD';
CREATE TABLE staging.scratch AS SELECT 1 AS x;
"""

BASE_TABLES = {"dim_partner", "dim_month", "fct_exports_monthly", "export_growth_monthly", ODD_TABLE, "fct_exports_cumulative"}
EXPORTED = BASE_TABLES | {"v_world"}


def _tiny_warehouse(path: Path, magnets: bool = True) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute(TINY_WAREHOUSE_SQL)
        if not magnets:
            con.execute("DELETE FROM marts.export_growth_monthly WHERE hs8 = '85051110'")
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    return _tiny_warehouse(tmp_path_factory.mktemp("wh") / "warehouse.duckdb")


@pytest.fixture
def ro(warehouse):
    con = duckdb.connect(str(warehouse), read_only=True)
    yield con
    con.close()


def _assert_png(path: Path, min_bytes: int) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > min_bytes, (path, len(data))
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 500 and pixels.shape[1] > 1000, pixels.shape


def _no_temp_files(directory: Path) -> None:
    leftovers = [p.name for p in directory.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers


# ---------------------------------------------------------------------------------------
# charts


def test_render_report_writes_valid_charts_and_html(ro, tmp_path):
    files = render_report(ro, tmp_path / "report")
    assert files.world_png == tmp_path / "report" / "world_85051110.png"
    assert files.partners_png == tmp_path / "report" / "partners_85051110.png"
    for png in (files.world_png, files.partners_png):
        _assert_png(png, 10_000)
    _no_temp_files(tmp_path / "report")

    page = files.html.read_text(encoding="utf-8")
    assert '<img src="world_85051110.png"' in page and '<img src="partners_85051110.png"' in page
    assert "marts.export_growth_monthly" in page
    assert "Dec 2025" in page  # as-of = max month
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr") == 12
    assert [m for m in re.findall(r"<td>(\d{4}-\d{2})</td>", body)] == [f"2025-{m:02d}" for m in range(12, 0, -1)]
    assert body.count('class="control"') == 3

    world_dec, usa_dec, world_jun, yoy_jun = ro.execute(
        """
        SELECT max(quantity_kg) FILTER (WHERE partner_iso3 = 'WLD' AND month = DATE '2025-12-01') / 1000,
               max(quantity_kg) FILTER (WHERE partner_iso3 = 'USA' AND month = DATE '2025-12-01') / 1000,
               max(quantity_kg) FILTER (WHERE partner_iso3 = 'WLD' AND month = DATE '2025-06-01') / 1000,
               max(yoy_pct) FILTER (WHERE partner_iso3 = 'WLD' AND month = DATE '2025-06-01')
        FROM marts.export_growth_monthly WHERE hs8 = '85051110'
        """
    ).fetchone()
    h = files.headline
    assert h["as_of"] == "2025-12" and h["months"] == 24
    assert h["world_t"] == pytest.approx(float(world_dec), abs=1e-3)
    assert h["usa_t"] == pytest.approx(float(usa_dec), abs=1e-3)
    assert h["jun_2025_world_t"] == pytest.approx(float(world_jun), abs=1e-3)
    assert h["jun_2025_world_yoy_pct"] == pytest.approx(yoy_jun, abs=1e-3)
    assert h["control_trough_month"] in {"2025-04", "2025-05", "2025-06"}
    assert f"{float(world_dec):,.0f}" in body
    json.dumps(h)  # fit for asset metadata


def test_render_report_is_deterministic_and_overwrites(ro, tmp_path):
    first = render_report(ro, tmp_path / "a")
    second = render_report(ro, tmp_path / "b")
    for x, y in zip(first.paths, second.paths):
        assert x.read_bytes() == y.read_bytes(), x.name
    again = render_report(ro, tmp_path / "a")  # replaces existing files in place
    assert again.world_png.read_bytes() == second.world_png.read_bytes()
    _no_temp_files(tmp_path / "a")


@pytest.mark.parametrize("case", ["no_85051110_rows", "no_marts_at_all"])
def test_render_report_empty_warehouse(tmp_path, case):
    if case == "no_85051110_rows":
        con = duckdb.connect(str(_tiny_warehouse(tmp_path / "empty.duckdb", magnets=False)), read_only=True)
    else:
        con = duckdb.connect()
    try:
        files = render_report(con, tmp_path / "report")
    finally:
        con.close()
    for png in (files.world_png, files.partners_png):
        _assert_png(png, 1_000)
    page = files.html.read_text(encoding="utf-8")
    assert "no data" in page.lower() and "<tbody>" not in page
    assert "world_85051110.png" in page and "partners_85051110.png" in page
    assert files.headline["as_of"] is None and files.headline["months"] == 0


def test_partner_list_is_the_brief():
    assert PARTNERS == ("USA", "DEU", "KOR", "JPN", "VNM", "IND")


# ---------------------------------------------------------------------------------------
# parquet


def _digest(con, relation_sql: str) -> tuple[int, str]:
    return con.execute(
        f"SELECT count(*), md5(coalesce(string_agg(CAST(t AS VARCHAR), chr(10) ORDER BY CAST(t AS VARCHAR)), '')) "
        f"FROM {relation_sql} t"
    ).fetchone()


def _parquet_relation(info) -> str:
    if info.partitioned:
        return (
            f"(SELECT * EXCLUDE ({quote_ident(info.partition_column)}) FROM read_parquet("
            f"{quote_literal(str(info.path / '**' / '*.parquet'))}, hive_partitioning = true))"
        )
    return f"read_parquet({quote_literal(str(info.path))})"


def _assert_round_trip(con, infos) -> None:
    assert set(infos) == EXPORTED  # the marts' views too; other schemas excluded
    for table, info in infos.items():
        original = f"marts.{quote_ident(table)}"
        exported = _parquet_relation(info)
        assert info.rows == con.execute(f"SELECT count(*) FROM {original}").fetchone()[0]
        assert _digest(con, exported) == _digest(con, original), table
        for a, b in ((original, exported), (exported, original)):
            assert con.execute(f"SELECT count(*) FROM (FROM {a} EXCEPT ALL FROM {b})").fetchone()[0] == 0, table
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {exported}").fetchall()]
        assert columns == [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {original}").fetchall()], table


def test_export_marts_round_trips_every_table(ro, tmp_path):
    infos = export_marts(ro, tmp_path / "parquet")
    assert not any(i.partitioned for i in infos.values())
    for info in infos.values():
        assert info.path.is_file() and info.path.name == f"{info.table}.parquet" and info.files == 1
    assert infos["fct_exports_monthly"].rows == 24 * 2 * 7
    assert infos["fct_exports_cumulative"].rows == 0
    _assert_round_trip(ro, infos)
    # rows are written sorted by all columns: the file reads back in that order
    first = ro.execute(f"SELECT * FROM {_parquet_relation(infos['dim_partner'])} LIMIT 1").fetchone()
    assert first[0] == "111"
    _no_temp_files(tmp_path / "parquet")


def test_export_marts_partitions_large_tables_by_year_and_swaps_back(ro, tmp_path):
    out = tmp_path / "parquet"
    export_marts(ro, out)  # files first, so the next export swaps files for directories
    infos = export_marts(ro, out, partition_threshold_rows=20)

    expected = {"fct_exports_monthly", "export_growth_monthly", "dim_month", ODD_TABLE, "v_world"}  # > 20 rows with a month column
    assert {t for t, i in infos.items() if i.partitioned} == expected
    assert not infos["dim_partner"].partitioned  # 7 rows
    for table in expected:
        info = infos[table]
        assert info.path.is_dir() and info.path.name == f"{table}.parquet"
        assert sorted(p.name for p in info.path.iterdir()) == [
            f"{info.partition_column}=2024", f"{info.partition_column}=2025"
        ]
        assert info.files >= 2
    assert infos["fct_exports_monthly"].partition_column == "year"
    assert infos["dim_month"].partition_column == "_year"  # dim_month has its own `year`
    _assert_round_trip(ro, infos)
    _no_temp_files(out)

    back = export_marts(ro, out)  # below the default threshold again: directories become files
    assert all(i.path.is_file() for i in back.values())
    _assert_round_trip(ro, back)
    _no_temp_files(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.parquet" for t in EXPORTED)


def test_export_marts_with_no_marts_tables(tmp_path):
    con = duckdb.connect()
    try:
        assert export_marts(con, tmp_path / "parquet") == {}
    finally:
        con.close()
    assert list((tmp_path / "parquet").iterdir()) == []


# ---------------------------------------------------------------------------------------
# parquet: what is written


def _stamps(out: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*.parquet") if p.is_file()}


def _rewritten(out: Path, before: dict) -> list[str]:
    """The outputs (a table's file, or a year directory) whose files are not those of `before`."""
    after = _stamps(out)
    return sorted({str(Path(p).parent) if "=" in Path(p).parent.name else p
                   for p in after if after[p] != before.get(p)})


def test_export_marts_writes_what_changed_and_what_is_missing(ro, tmp_path):
    out = tmp_path / "parquet"
    first = export_marts(ro, out, partition_threshold_rows=20)
    assert all(i.reused == 0 for i in first.values())
    stamps = _stamps(out)

    nothing = export_marts(ro, out, {}, partition_threshold_rows=20)
    assert all(i.reused == i.files for i in nothing.values())
    assert _stamps(out) == stamps

    changed = export_marts(ro, out, {"fct_exports_monthly": {2025}, "dim_partner": None}, partition_threshold_rows=20)
    # the view too, whole: it shows dim_partner's rows, which changed whole
    assert _rewritten(out, stamps) == ["dim_partner.parquet", "fct_exports_monthly.parquet/year=2025", "v_world.parquet/year=2024", "v_world.parquet/year=2025"]
    assert changed["fct_exports_monthly"].reused == changed["fct_exports_monthly"].files - 1
    assert changed["dim_partner"].reused == 0
    _assert_round_trip(ro, changed)

    # outputs deleted since: written again although their rows did not change
    stamps = _stamps(out)
    shutil.rmtree(out / "export_growth_monthly.parquet" / "year=2024")
    (out / "dim_month.parquet" / "_year=2025").rename(out / "dim_month.parquet" / "_year=1999")  # a stray year
    (out / "fct_exports_cumulative.parquet").unlink()
    again = export_marts(ro, out, {}, partition_threshold_rows=20)
    assert _rewritten(out, stamps) == ["dim_month.parquet/_year=2025", "export_growth_monthly.parquet/year=2024",
                                       "fct_exports_cumulative.parquet"]
    assert sorted(p.name for p in (out / "dim_month.parquet").iterdir()) == ["_year=2024", "_year=2025"]
    _assert_round_trip(ro, again)
    _no_temp_files(out)


def test_a_view_is_rewritten_where_the_tables_it_reads_changed(ro, tmp_path):
    """With its sources known, v_world (export_growth_monthly's world rows) is not rewritten when
    only a dimension changed, and is rewritten in the years its growth metrics changed."""
    out = tmp_path / "parquet"
    export_marts(ro, out, partition_threshold_rows=20)
    sources = {"v_world": {"export_growth_monthly"}}
    stamps = _stamps(out)
    export_marts(ro, out, {"dim_partner": None, "fct_exports_monthly": {2025}}, partition_threshold_rows=20,
                 view_sources=sources)
    assert _rewritten(out, stamps) == ["dim_partner.parquet", "fct_exports_monthly.parquet/year=2025"]
    stamps = _stamps(out)
    infos = export_marts(ro, out, {"export_growth_monthly": {2025}}, partition_threshold_rows=20, view_sources=sources)
    assert _rewritten(out, stamps) == ["export_growth_monthly.parquet/year=2025", "v_world.parquet/year=2025"]
    # the kept year's rows are counted from its Parquet footers, not by reading the view
    assert infos["v_world"].reused == len(list((out / "v_world.parquet" / "year=2024").glob("*.parquet")))
    _assert_round_trip(ro, infos)
    # a year deleted from the view's output is written again: its years are those of the table it reads
    stamps = _stamps(out)
    shutil.rmtree(out / "v_world.parquet" / "year=2024")
    infos = export_marts(ro, out, {}, partition_threshold_rows=20, view_sources=sources)
    assert _rewritten(out, stamps) == ["v_world.parquet/year=2024"]
    _assert_round_trip(ro, infos)
    stamps = _stamps(out)
    infos = export_marts(ro, out, {"v_world": None}, partition_threshold_rows=20, view_sources=sources)  # redefined
    assert _rewritten(out, stamps) == ["v_world.parquet/year=2024", "v_world.parquet/year=2025"]
    _assert_round_trip(ro, infos)
    _no_temp_files(out)


def test_a_one_file_output_reads_only_the_changed_years(tmp_path):
    """A table under the threshold is one file; after a change in 2025 its 2024 rows are kept from
    the file (a change the caller did not report stays unseen, as in a kept year directory), and
    the file holds what a whole rewrite would: the same columns, types and rows in order."""
    con = duckdb.connect(str(_tiny_warehouse(tmp_path / "warehouse.duckdb")))
    try:
        out = tmp_path / "parquet"
        export_marts(con, out)
        stamps = _stamps(out)
        con.execute("UPDATE marts.fct_exports_monthly SET quantity_kg = quantity_kg + 1 WHERE year(month) = 2024")
        con.execute("UPDATE marts.fct_exports_monthly SET quantity_kg = quantity_kg + 2 WHERE year(month) = 2025")
        infos = export_marts(con, out, {"fct_exports_monthly": {2025}})
        assert _rewritten(out, stamps) == ["fct_exports_monthly.parquet", "v_world.parquet"]
        fact = _parquet_relation(infos["fct_exports_monthly"])
        assert infos["fct_exports_monthly"].rows == 24 * 2 * 7 and infos["fct_exports_monthly"].reused == 0
        added = dict(con.execute(
            f"SELECT year(e.month), min(e.quantity_kg - f.quantity_kg) || '..' || max(e.quantity_kg - f.quantity_kg) "
            f"FROM {fact} e JOIN marts.fct_exports_monthly f USING (month, hs8, partner_code) GROUP BY 1").fetchall())
        assert added == {2024: "-1.000..-1.000", 2025: "0.000..0.000"}  # 2024 as exported before the update

        # reported whole, it is read whole; the same file as an export from scratch
        infos = export_marts(con, out, {"fct_exports_monthly": {2024, 2025}})
        scratch = export_table(con, "fct_exports_monthly", tmp_path / "scratch")
        rows = [con.execute(f"SELECT * FROM {_parquet_relation(i)}").fetchall() for i in (infos["fct_exports_monthly"], scratch)]
        assert rows[0] == rows[1] == con.execute("SELECT * FROM marts.fct_exports_monthly ORDER BY ALL").fetchall()
        kinds = [con.execute(f"DESCRIBE SELECT * FROM {_parquet_relation(i)}").fetchall() for i in (infos["fct_exports_monthly"], scratch)]
        assert kinds[0] == kinds[1]
        _assert_round_trip(con, infos)

        # unchanged: kept, its rows counted from the footer; a model with a new column: written whole
        unchanged = export_marts(con, out, {})
        assert unchanged["fct_exports_monthly"].reused == 1 and unchanged["fct_exports_monthly"].rows == 24 * 2 * 7
        con.execute("ALTER TABLE marts.fct_exports_monthly ADD COLUMN flow VARCHAR DEFAULT 'export'")
        infos = export_marts(con, out, {"fct_exports_monthly": {2025}})
        assert con.execute(f"SELECT count(*) FROM {_parquet_relation(infos['fct_exports_monthly'])} "
                           "WHERE flow = 'export'").fetchone()[0] == 24 * 2 * 7
        _no_temp_files(out)
    finally:
        con.close()


def test_a_reader_never_sees_a_half_written_file(tmp_path):
    """Readers poll the outputs while exports rewrite them: every file they open is whole."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    # big enough that writing a file takes a while (tens of ms): a reader would catch it half-written
    con.execute("""CREATE TABLE marts.fct AS SELECT DATE '2023-01-01' + INTERVAL (i % 36) MONTH AS month,
                   i AS id, md5(i::VARCHAR) AS text FROM range(150000) r(i)""")
    con.execute("CREATE TABLE marts.by_year AS SELECT * FROM marts.fct")
    rows = 150_000
    out = tmp_path / "parquet"

    def export():
        export_table(con, "fct", out, None, partition_threshold_rows=rows)  # a file
        export_table(con, "by_year", out, None, partition_threshold_rows=1000)  # a directory per year

    export()
    errors, reads, stop = [], [0], threading.Event()

    def read():
        reader = duckdb.connect()
        try:
            while not stop.is_set():
                try:
                    n = reader.execute(f"SELECT count(*) FROM read_parquet('{out / 'fct.parquet'}')").fetchone()[0]
                    if n != rows:
                        errors.append(f"fct: {n} rows")
                    # a year directory is renamed aside and the new one in: a file listed may be gone
                    # by the time it is read, but one that is read is whole
                    try:
                        year_files = list((out / "by_year.parquet").glob("year=*/*.parquet"))
                    except FileNotFoundError:
                        year_files = []
                    for year_file in year_files:
                        try:
                            reader.execute(f"SELECT count(*) FROM read_parquet('{year_file}')").fetchone()
                        except duckdb.IOException as exc:
                            if "No files found" not in str(exc) and "No such file" not in str(exc):
                                raise
                    reads[0] += 1
                except Exception as exc:  # noqa: BLE001 - every failure is a finding
                    errors.append(repr(exc))
        finally:
            reader.close()

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for _ in range(6):
            export()
    finally:
        stop.set()
        thread.join()
        con.close()
    assert errors == [] and reads[0] > 5, (errors[:3], reads)
    _no_temp_files(out)


# ---------------------------------------------------------------------------------------
# parquet, through Dagster: what to write is read from Dagster's record

EXPORT_OP = "serving__parquet_exports"
SMALL_PARTS = {"ops": {EXPORT_OP: {"config": {"partition_threshold_rows": 20}}}}


@pytest.fixture
def served(tmp_path, monkeypatch) -> Path:
    """A tiny served warehouse where WarehouseResource looks for it."""
    path = tmp_path / "wh" / "warehouse.duckdb"
    path.parent.mkdir()
    monkeypatch.setenv("WAREHOUSE_PATH", str(path))
    monkeypatch.setenv("CUSTOMS_LANDING_DIR", str(tmp_path / "landing"))
    return _tiny_warehouse(path)


@pytest.fixture
def instance():
    from dagster import DagsterInstance

    with DagsterInstance.ephemeral() as instance:
        yield instance


def _materialize(assets, instance, **kwargs):
    from dagster import materialize

    from dagster_project.defs.resources import WarehouseResource

    result = materialize(assets, instance=instance, resources={"warehouse": WarehouseResource()}, **kwargs)
    assert result.success
    return result


def _metadata(result, op: str) -> dict:
    [event] = result.asset_materializations_for_node(op)
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def _export(instance, assets=None):
    from dagster_project.defs.serving.exports import parquet_exports

    return _metadata(_materialize(assets or [parquet_exports], instance, run_config=SMALL_PARTS), EXPORT_OP)


def _dbt_run(instance, warehouse: Path, month: str | None, statements: dict[tuple[str, str], str]):
    """A run of dbt assets as the dbt build's would be: each asset rewrites its rows (its SQL,
    with $month the month of the run) and Dagster records it, with the run's month partition
    for the month-partitioned ones (`month` None: a run of unpartitioned assets)."""
    from dagster import asset

    from dagster_project.defs.partitions import CUSTOMS_MONTH
    from dagster_project.lib.months import key_month

    def stand_in(key, sql):
        @asset(key=list(key), partitions_def=CUSTOMS_MONTH if month else None)
        def build(context):
            con = duckdb.connect(str(warehouse))
            try:
                con.execute(sql, {"month": key_month(context.partition_key)} if month else {})
            finally:
                con.close()

        return build

    _materialize([stand_in(k, sql) for k, sql in statements.items()], instance, partition_key=month)


FCT, GROWTH, DIM_PARTNER = ("marts", "fct_exports_monthly"), ("marts", "export_growth_monthly"), ("marts", "dim_partner")
ADD_ONE = "UPDATE marts.{t} SET quantity_kg = quantity_kg + 1 WHERE month = $month"
# dbt rewrites the growth metrics of the months after the rebuilt one, through December of the next year
ADD_ONE_FROM = "UPDATE marts.{t} SET quantity_kg = quantity_kg + 1 WHERE month >= $month"


def test_parquet_exports_rewrite_what_was_built_since(served, instance):
    out = served.parent / "export"
    first = _export(instance)  # never materialised: everything
    assert first["files_kept_unchanged"] == 0
    assert (out / "fct_exports_monthly.parquet" / "year=2024").is_dir()
    stamps = _stamps(out)

    nothing = _export(instance)  # nothing built since
    assert nothing["files_written"] == 0 and nothing["files_kept_unchanged"] == first["files_written"]
    assert _stamps(out) == stamps

    # one month built (2024-11): its year of the facts, its year and the next of the growth metrics
    _dbt_run(instance, served, "2024-11", {FCT: ADD_ONE.format(t="fct_exports_monthly"),
                                           GROWTH: ADD_ONE_FROM.format(t="export_growth_monthly")})
    one_month = _export(instance)
    assert _rewritten(out, stamps) == ["export_growth_monthly.parquet/year=2024", "export_growth_monthly.parquet/year=2025",
                                       "fct_exports_monthly.parquet/year=2024", "v_world.parquet/year=2024", "v_world.parquet/year=2025"]  # the view: the years any table changed
    assert one_month["files_kept_unchanged"] == first["files_written"] - one_month["files_written"]

    # an unpartitioned mart built: its file only
    stamps = _stamps(out)
    _dbt_run(instance, served, None, {DIM_PARTNER: "UPDATE marts.dim_partner SET partner_name_en = upper(partner_name_en)"})
    _export(instance)
    assert _rewritten(out, stamps) == ["dim_partner.parquet", "v_world.parquet/year=2024", "v_world.parquet/year=2025"]

    # what was kept and what was written are the marts as they are now
    stamps = _stamps(out)
    con = duckdb.connect(str(served), read_only=True)
    try:
        _assert_round_trip(con, export_marts(con, out, {}, partition_threshold_rows=20))
    finally:
        con.close()
    assert _stamps(out) == stamps
    _no_temp_files(out)


def test_parquet_exports_write_missing_outputs_and_everything_for_a_new_writer(served, instance):
    from dagster import map_asset_specs

    from dagster_project.defs.serving.exports import parquet_exports

    out = served.parent / "export"
    _export(instance)
    stamps = _stamps(out)
    shutil.rmtree(out / "fct_exports_monthly.parquet")
    (out / "dim_partner.parquet").unlink()
    _export(instance)
    assert _rewritten(out, stamps) == ["dim_partner.parquet", "fct_exports_monthly.parquet/year=2024",
                                       "fct_exports_monthly.parquet/year=2025"]

    stamps = _stamps(out)
    new_writer = map_asset_specs(lambda spec: spec.replace_attributes(code_version="another writer"), [parquet_exports])
    written = _export(instance, new_writer)
    assert written["files_kept_unchanged"] == 0
    assert not set(_stamps(out).items()) & set(stamps.items())


# ---------------------------------------------------------------------------------------
# charts, through Dagster: drawn again only when what they show changed

REPORT_OP = "serving__analyst_report"


def _report(instance, assets=None) -> dict:
    from dagster_project.defs.serving.report import analyst_report

    return _metadata(_materialize(assets or [analyst_report], instance), REPORT_OP)


def _report_files(served: Path) -> dict[str, tuple[bytes, int]]:
    report = served.parent / "report"
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(report.iterdir())}


def test_unchanged_inputs_keep_the_files(served, instance):
    first = _report(instance)
    assert first["rendered"] is True
    files = _report_files(served)
    pngs = ["partners_85051110.png", "world_85051110.png", "provinces_85051110.png", "imports_2846.png"]
    assert sorted(files) == sorted([REPORT_HTML, REPORT_JSON, *pngs])
    record = json.loads(files[REPORT_JSON][0])
    assert record["headline"] == first["headline"] and set(record["files"]) == {REPORT_HTML, *pngs}

    again = _report(instance)
    assert again["rendered"] is False and again["headline"] == first["headline"]
    assert _report_files(served) == files

    # a build of other marts: kept
    _dbt_run(instance, served, None, {DIM_PARTNER: "SELECT 1"})
    assert _report(instance)["rendered"] is False
    assert _report_files(served) == files


def test_changed_data_draws_again(served, instance):
    first = _report(instance)
    world_png = served.parent / "report" / "world_85051110.png"
    png = world_png.read_bytes()
    _dbt_run(instance, served, "2025-12", {GROWTH: "UPDATE marts.export_growth_monthly SET quantity_kg = quantity_kg * 2 "
                                                   "WHERE partner_iso3 = 'WLD' AND month = $month AND hs8 = '85051110'"})
    second = _report(instance)
    assert second["rendered"] is True and world_png.read_bytes() != png
    assert second["headline"]["world_t"] == pytest.approx(2 * first["headline"]["world_t"])
    assert _report(instance)["rendered"] is False


@pytest.mark.parametrize("damage", ["remove_png", "edit_html", "remove_record", "corrupt_record"])
def test_missing_or_edited_files_draw_again(served, instance, damage):
    report = served.parent / "report"
    _report(instance)
    if damage == "remove_png":
        (report / "partners_85051110.png").unlink()
    elif damage == "edit_html":
        (report / REPORT_HTML).write_text((report / REPORT_HTML).read_text() + "<!-- edited -->")
    elif damage == "remove_record":
        (report / REPORT_JSON).unlink()
    else:
        (report / REPORT_JSON).write_text("{not json")
    assert _report(instance)["rendered"] is True
    for name in ("world_85051110.png", "partners_85051110.png", REPORT_HTML, REPORT_JSON):
        assert (report / name).exists()
    assert "<!-- edited -->" not in (report / REPORT_HTML).read_text()
    assert _report(instance)["rendered"] is False


def test_a_new_renderer_draws_again(served, instance):
    from dagster import map_asset_specs

    from dagster_project.defs.serving.report import analyst_report

    _report(instance)
    assert analyst_report.code_versions_by_key[analyst_report.key] == renderer_version()
    new_renderer = map_asset_specs(lambda spec: spec.replace_attributes(code_version="another renderer"), [analyst_report])
    assert _report(instance, new_renderer)["rendered"] is True


def test_charts_module_does_not_import_matplotlib():
    import subprocess

    code = ("import sys, dagster_project.lib.serving.charts, dagster_project.defs.serving.report; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------
# a real build, then one month more


@pytest.mark.slow
def test_a_one_month_build_rewrites_that_year_of_the_exports_only(tmp_path, monkeypatch):
    from dagster import AssetKey, DagsterInstance

    from dagster_project.defs.jobs import INGEST_KEYS, build_in_process
    from dagster_project.defs.partitions import range_tags
    from dagster_project.definitions import defs
    from dagster_project.lib.months import key_month
    from gacc_files import copy_sample

    from conftest import make_workspace

    ws = make_workspace(tmp_path)
    monkeypatch.setenv("CUSTOMS_LANDING_DIR", str(ws.landing))
    monkeypatch.setenv("WAREHOUSE_PATH", str(ws.warehouse))
    copy_sample(ws.landing, months=[f"2024{m:02d}" for m in range(1, 13)] + [f"2025{m:02d}" for m in range(1, 12)])
    job, graph = defs.resolve_job_def("build_warehouse"), defs.resolve_asset_graph()
    out = ws.warehouse.parent / "export"
    with DagsterInstance.ephemeral() as instance:
        assert build_in_process(job, graph, instance).success
        # the large marts as one directory per year
        assert job.get_subset(asset_selection={AssetKey(["serving", "parquet_exports"])}).execute_in_process(
            instance=instance, run_config=SMALL_PARTS).success
        assert (out / "fct_exports_monthly.parquet" / "year=2024").is_dir()
        stamps = _stamps(out)

        # December arrives: one run of its month, as a user launches it from the UI
        copy_sample(ws.landing, months=["202512"])
        assert job.get_subset(asset_selection=set(INGEST_KEYS), asset_check_selection=set()).execute_in_process(
            instance=instance).success
        rest = {k for k in graph.materializable_asset_keys if k not in INGEST_KEYS}
        month = key_month("2025-12")
        assert job.get_subset(asset_selection=rest).execute_in_process(
            instance=instance, run_config=SMALL_PARTS, tags=range_tags(month, month)).success
    rewritten = _rewritten(out, stamps)
    assert "fct_exports_monthly.parquet/year=2025" in rewritten
    assert "fct_exports_monthly.parquet/year=2024" not in rewritten
    assert "export_growth_monthly.parquet/year=2024" not in rewritten
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        assert con.execute(f"SELECT max(month) FROM read_parquet('{out}/fct_exports_monthly.parquet/**/*.parquet')"
                           ).fetchone()[0].isoformat() == "2025-12-01"
        for table in ("fct_exports_monthly", "export_growth_monthly"):
            exported = f"read_parquet('{out}/{table}.parquet/**/*.parquet', hive_partitioning = true)"
            assert _digest(con, f"(SELECT * EXCLUDE (year) FROM {exported})") == _digest(con, f"marts.{table}"), table
    finally:
        con.close()
