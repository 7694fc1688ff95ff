"""The DuckDB side of the warehouse: connections, and the tables Python owns (raw.*, audit.*).

dbt owns every other schema (staging, intermediate, marts, reference); the ingest writes raw.*,
the quality gate and the ingest write audit.*.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dagster_project.lib.settings import DUCKDB_MEMORY_LIMIT

if TYPE_CHECKING:  # imported where a connection is opened: the background copy (`refresh`) needs no DuckDB
    import duckdb

RAW_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SEQUENCE IF NOT EXISTS raw.load_seq START 1;
CREATE TABLE IF NOT EXISTS raw.customs_loads (
    load_id           VARCHAR PRIMARY KEY,
    load_seq          BIGINT NOT NULL,
    file_path         VARCHAR NOT NULL,   -- relative to the landing directory
    file_sha256       VARCHAR NOT NULL,
    file_size_bytes   BIGINT NOT NULL,
    flow              VARCHAR NOT NULL,   -- exports | imports (the landing sub-folder)
    encoding          VARCHAR NOT NULL,
    header_language   VARCHAR NOT NULL,
    currency          VARCHAR NOT NULL,   -- USD | CNY
    dimensions        VARCHAR NOT NULL,   -- e.g. 'hs8,partner' or 'hs8,partner,regime'
    period_source     VARCHAR NOT NULL,   -- column | file name
    period_start      DATE NOT NULL,
    period_end        DATE NOT NULL,
    row_count         BIGINT NOT NULL,
    unit_conversions  VARCHAR,
    warnings          VARCHAR,
    dagster_run_id    VARCHAR,
    loaded_at         TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.customs_rows (
    load_id             VARCHAR NOT NULL,
    source_file         VARCHAR NOT NULL,
    file_sha256         VARCHAR NOT NULL,
    loaded_at           TIMESTAMP NOT NULL,
    row_number          BIGINT NOT NULL,      -- data row in the file (line = row_number + 1)
    flow                VARCHAR NOT NULL,
    currency            VARCHAR NOT NULL,
    period_start        DATE NOT NULL,
    period_end          DATE NOT NULL,
    is_cumulative       BOOLEAN NOT NULL,
    hs8                 VARCHAR NOT NULL,
    commodity_name      VARCHAR,
    partner_code        VARCHAR,              -- NULL: the download has no partner column (world total, province or regime breakdown)
    partner_name        VARCHAR,
    regime_code         VARCHAR,
    regime_name         VARCHAR,
    province_code       VARCHAR,
    province_name       VARCHAR,
    quantity            DECIMAL(38, 4),       -- as written, in `unit`
    unit                VARCHAR,              -- as written
    unit_code           VARCHAR,              -- GACC unit code of `unit`
    declared_unit_code  VARCHAR,              -- the commodity's first unit
    unit_factor         DECIMAL(38, 6),       -- quantity * unit_factor = quantity in the declared unit
    quantity2           DECIMAL(38, 4),
    unit2               VARCHAR,
    value               DECIMAL(38, 4)        -- in `currency`
);
-- Each landing file's SHA-256 and the file status it was computed for: a build reads again
-- only the files that changed since (lib/ingest/landing_hashes.py).
CREATE TABLE IF NOT EXISTS raw.landing_file_hashes (
    file_path     VARCHAR NOT NULL,   -- relative to the landing directory
    size_bytes    BIGINT NOT NULL,
    mtime_ns      BIGINT NOT NULL,
    ctime_ns      BIGINT NOT NULL,
    inode         BIGINT NOT NULL,
    file_sha256   VARCHAR NOT NULL,
    hashed_at     TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS audit.rejected_files (
    file_path    VARCHAR NOT NULL,
    file_sha256  VARCHAR,
    reason       VARCHAR NOT NULL,
    rejected_at  TIMESTAMP NOT NULL,
    dagster_run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS audit.check_results (
    dagster_run_id VARCHAR NOT NULL,
    check_name  VARCHAR NOT NULL,
    asset_key   VARCHAR NOT NULL,
    severity    VARCHAR NOT NULL,
    passed      BOOLEAN NOT NULL,
    observed    VARCHAR,
    checked_at  TIMESTAMP NOT NULL,
    description VARCHAR,
    failing_sample VARCHAR
);
-- The months each load holds rows for (the file -> months mapping, written by the ingest):
-- with Dagster's record of which month partitions were built when, it says which months the
-- next build must rebuild (dagster_project/defs/partitions.py).
CREATE TABLE IF NOT EXISTS raw.customs_load_months (
    load_id  VARCHAR NOT NULL,
    month    DATE NOT NULL,      -- a period_start of the load's rows
    PRIMARY KEY (load_id, month)
);
-- Partner-reported imports from China (UN Comtrade downloads under mirror/comtrade/):
-- lib/ingest/comtrade_loader.py writes them, one load per file, like the GACC loads above.
CREATE TABLE IF NOT EXISTS raw.comtrade_loads (
    load_id                  VARCHAR PRIMARY KEY,
    load_seq                 BIGINT NOT NULL,
    file_path                VARCHAR NOT NULL,
    file_sha256              VARCHAR NOT NULL,
    file_size_bytes          BIGINT NOT NULL,
    encoding                 VARCHAR NOT NULL,
    period_source            VARCHAR NOT NULL,
    period_start             DATE,
    period_end               DATE,
    row_count                BIGINT NOT NULL,
    rows_kept                BIGINT NOT NULL,
    rows_ignored_not_monthly BIGINT NOT NULL,
    rows_ignored_not_import  BIGINT NOT NULL,
    rows_ignored_not_china   BIGINT NOT NULL,
    rows_ignored_breakdown   BIGINT NOT NULL,
    rows_ignored_not_hs6     BIGINT NOT NULL,
    reporters                VARCHAR,
    warnings                 VARCHAR,
    dagster_run_id           VARCHAR,
    loaded_at                TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.comtrade_rows (
    load_id               VARCHAR NOT NULL,
    source_file           VARCHAR NOT NULL,
    file_sha256           VARCHAR NOT NULL,
    loaded_at             TIMESTAMP NOT NULL,
    row_number            BIGINT NOT NULL,
    month                 DATE NOT NULL,
    reporter_code         VARCHAR NOT NULL,
    reporter_iso3         VARCHAR NOT NULL,
    reporter_name         VARCHAR,
    flow_code             VARCHAR NOT NULL,
    partner_code          VARCHAR NOT NULL,
    partner_iso3          VARCHAR,
    hs6                   VARCHAR NOT NULL,
    commodity_name        VARCHAR,
    qty_unit_code         INTEGER NOT NULL,
    qty_unit_abbr         VARCHAR,
    qty                   DECIMAL(38, 4),
    net_weight_kg         DECIMAL(38, 4),
    cif_value_usd         DECIMAL(38, 4),
    fob_value_usd         DECIMAL(38, 4),
    primary_value_usd     DECIMAL(38, 4),
    is_qty_estimated      BOOLEAN,
    is_reported           BOOLEAN
);
"""

# What BI tools show for these tables and columns (COMMENT ON, written by every build, so a
# warehouse made before a comment existed gets it too). dbt writes the comments of its own schemas.
TABLE_COMMENTS = {
    "raw.customs_loads": "One row per loaded landing file: its content hash, format, period and load time (lineage).",
    "raw.customs_rows": "One row per data row of a loaded file, as written (codes as text, quantity in its unit, value in its currency).",
    "raw.landing_file_hashes": "Each landing file's SHA-256 and the size, times and inode it was computed for: a build rehashes only changed files.",
    "raw.customs_load_months": "The months each load holds rows for: with Dagster's record of built months, what the next build rebuilds.",
    "audit.rejected_files": "Landing files that could not be loaded, with the reason (file, row and column named).",
    "audit.check_results": "Every quality check outcome of every run, failed runs included.",
    "raw.comtrade_loads": "One row per loaded UN Comtrade file (mirror/comtrade/): rows kept and ignored by reason, lineage.",
    "raw.comtrade_rows": "The rows kept of each Comtrade file: a partner's monthly imports from China at HS6, as written.",
}
_LOAD_ID = "The load (one loaded file): joins raw.customs_loads."
_RUN = "Dagster run id of the build that wrote the row (the Dagster UI's run page)."
COLUMN_COMMENTS = {
    "raw.customs_loads": {
        "load_id": "Load id: hash of the file path and content (plus a generation when the same file is loaded again).",
        "load_seq": "Order of the loads (later supersedes earlier for the same fact key).",
        "file_path": "File path relative to the landing directory, e.g. exports/gacc_exports_202506.csv.",
        "file_sha256": "SHA-256 of the file's bytes.",
        "file_size_bytes": "File size in bytes.",
        "flow": "exports or imports (the landing sub-folder).",
        "encoding": "Text encoding detected (GB18030, UTF-8 ...).",
        "header_language": "Header language detected: zh or en.",
        "currency": "Currency of the value column: USD or CNY.",
        "dimensions": "Dimensions of the file's rows, e.g. hs8,partner or hs8,partner,regime.",
        "period_source": "Where the period came from: column (a date column) or file name.",
        "period_start": "First month of the file's rows (first day).",
        "period_end": "Last month of the file's rows (first day).",
        "row_count": "Data rows loaded from the file.",
        "unit_conversions": "Quantities converted to the declared unit (unit as written -> declared unit, factor, rows); NULL if none.",
        "warnings": "What the load noticed but accepted (unknown partners or codes, period mismatches); NULL if nothing.",
        "dagster_run_id": _RUN,
        "loaded_at": "When the file was loaded (UTC); the valid_from of its facts. Files of one run share it.",
    },
    "raw.customs_rows": {
        "load_id": _LOAD_ID,
        "source_file": "File path relative to the landing directory.",
        "file_sha256": "SHA-256 of the file's bytes.",
        "loaded_at": "When the file was loaded (UTC).",
        "row_number": "Data row in the file (line = row_number + 1, after the header).",
        "flow": "exports or imports.",
        "currency": "Currency of value: USD or CNY.",
        "period_start": "First month the row covers (first day).",
        "period_end": "Last month the row covers (first day); equal to period_start for a monthly row.",
        "is_cumulative": "True for year-to-date or multi-month rows (never spread over months).",
        "hs8": "8-digit HS commodity code (text).",
        "commodity_name": "Commodity name as written in the file.",
        "partner_code": "GACC trading partner code (3 digits, text).",
        "partner_name": "Partner name as written in the file.",
        "regime_code": "GACC customs regime code, when the file has the dimension.",
        "regime_name": "Customs regime name as written.",
        "province_code": "Registration place (province) code, when the file has the dimension.",
        "province_name": "Registration place name as written.",
        "quantity": "First quantity as written, in unit.",
        "unit": "First unit as written.",
        "unit_code": "GACC unit code of unit.",
        "declared_unit_code": "GACC code of the commodity's first (declared) unit.",
        "unit_factor": "quantity * unit_factor = the quantity in the declared unit.",
        "quantity2": "Second (supplementary) quantity as written.",
        "unit2": "Second unit as written.",
        "value": "Value in currency.",
    },
    "raw.landing_file_hashes": {
        "file_path": "File path relative to the landing directory.",
        "size_bytes": "File size when hashed.",
        "mtime_ns": "Modification time when hashed (ns since the epoch).",
        "ctime_ns": "Status change time when hashed (ns since the epoch).",
        "inode": "Inode number when hashed.",
        "file_sha256": "SHA-256 of the file's bytes.",
        "hashed_at": "When the hash was computed (UTC).",
    },
    "raw.customs_load_months": {
        "load_id": _LOAD_ID,
        "month": "A month (first day) the load holds rows for.",
    },
    "audit.rejected_files": {
        "file_path": "File path relative to the landing directory.",
        "file_sha256": "SHA-256 of the file's bytes (NULL if it could not be read).",
        "reason": "Why it was rejected, naming the row and column where one is at fault.",
        "rejected_at": "When it was rejected (UTC).",
        "dagster_run_id": _RUN,
    },
    "audit.check_results": {
        "dagster_run_id": _RUN,
        "check_name": "Quality check name (docs/quality_checks.md).",
        "asset_key": "Dagster asset the check is attached to, e.g. marts/fct_exports_monthly.",
        "severity": "error (blocks publishing) or warn.",
        "passed": "True when the check passed.",
        "observed": "What the check observed (summary of its expectations).",
        "checked_at": "When the check ran (UTC).",
        "description": "What the check verifies.",
        "failing_sample": "Up to 20 failing rows as JSON; NULL when it passed.",
    },
    "raw.comtrade_loads": {
        "load_id": "Id of the load: the file's path, content hash and how many times that pair was loaded before.",
        "load_seq": "Order of the loads (shared with raw.customs_loads): a later load revises the same reporter-month-code-partner.",
        "file_path": "The file, relative to the landing directory (mirror/comtrade/...).",
        "file_sha256": "SHA-256 of the file's bytes as read.",
        "file_size_bytes": "Size of the file in bytes.",
        "encoding": "Text encoding the file was read in (utf-8; a byte-order mark is allowed).",
        "period_source": "Where the rows' months come from: the period column.",
        "period_start": "First month of the rows kept (NULL when none was kept).",
        "period_end": "Last month of the rows kept (NULL when none was kept).",
        "row_count": "Data rows in the file.",
        "rows_kept": "Rows loaded into raw.comtrade_rows: monthly imports (flowCode M) from China (partnerCode 156) at HS6, all customs procedures, transport modes and second partners.",
        "rows_ignored_not_monthly": "Rows ignored: annual (freqCode A).",
        "rows_ignored_not_import": "Rows ignored (monthly): a flow other than imports (X exports, RM re-imports, RX ...).",
        "rows_ignored_not_china": "Rows ignored (monthly imports): a partner other than China (156), World (0) included.",
        "rows_ignored_breakdown": "Rows ignored (monthly imports from China): a breakdown by customs procedure, transport mode or second partner, whose totals row is kept.",
        "rows_ignored_not_hs6": "Rows ignored (monthly imports from China, totals): a commodity code that is not 6 digits (chapters, headings, TOTAL).",
        "reporters": "ISO3 codes of the reporters of the rows kept.",
        "warnings": "What the load noticed without refusing the file.",
        "dagster_run_id": "Dagster run that loaded the file.",
        "loaded_at": "When the file was loaded (UTC).",
    },
    "raw.comtrade_rows": {
        "load_id": "Load the row came in (raw.comtrade_loads).",
        "source_file": "The file, relative to the landing directory.",
        "file_sha256": "SHA-256 of the file.",
        "loaded_at": "When the file was loaded (UTC).",
        "row_number": "Data row in the file (line = row_number + 1).",
        "month": "First day of the month the partner reports (period YYYYMM).",
        "reporter_code": "reporterCode: the partner's UN M49 code (842 United States ...).",
        "reporter_iso3": "reporterISO: the partner's ISO3 code.",
        "reporter_name": "reporterDesc as written.",
        "flow_code": "flowCode: M (imports) for every row kept.",
        "partner_code": "partnerCode: 156 (China) for every row kept.",
        "partner_iso3": "partnerISO as written (CHN).",
        "hs6": "cmdCode: the HS6 code the partner reports.",
        "commodity_name": "cmdDesc as written.",
        "qty_unit_code": "qtyUnitCode: Comtrade quantity unit (8 = kg, 5 = items, -1 = no quantity ...).",
        "qty_unit_abbr": "qtyUnitAbbr as written.",
        "qty": "qty: the quantity in qty_unit_code.",
        "net_weight_kg": "netWgt: net weight in kg, when reported.",
        "cif_value_usd": "cifvalue: value at the partner's border, cost, insurance and freight included (USD).",
        "fob_value_usd": "fobvalue: value free on board (USD), when the partner reports it.",
        "primary_value_usd": "primaryValue: the partner's headline value (CIF for most importers, USD).",
        "is_qty_estimated": "isQtyEstimated: the quantity was estimated by UN Comtrade.",
        "is_reported": "isReported: the figure was reported by the country (not estimated).",
    },
}

# Bookkeeping tables of earlier versions, whose facts Dagster's partitions now record.
RETIRED_TABLES = (
    "raw.customs_loads_built", "raw.customs_load_months_built", "raw.months_to_verify",
    "raw.dbt_static_build", "audit.mart_month_fingerprints",
)


def open_db(path: Path | str | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection under CUSTOMS_DUCKDB_MEMORY_LIMIT (None: in memory).

    Every connection of the Dagster process goes through here: DuckDB's default is 80% of the
    machine's RAM per connection, which a national-size export or checkpoint would take.
    """
    import duckdb

    return duckdb.connect(":memory:" if path is None else str(path), read_only=read_only,
                          config={"memory_limit": DUCKDB_MEMORY_LIMIT})


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """A base table `schema.table` in the connection's databases (views do not count)."""
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = $s AND table_name = $t", {"s": schema, "t": table}
    ).fetchone()[0])


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create what is missing of raw.* and audit.*; fill the load -> months mapping of loads
    made before it existed (once: a scan of every raw row)."""
    had_months = table_exists(con, "raw", "customs_load_months")
    if _has_column(con, "audit", "check_results", "run_id"):  # its name before it was the same everywhere
        con.execute("ALTER TABLE audit.check_results RENAME COLUMN run_id TO dagster_run_id")
    con.execute(RAW_DDL)
    # downloads without a partner column (world totals, province and regime breakdowns) load since
    # the warehouse takes every grouping the GACC platform offers: older files declared it NOT NULL
    if con.execute("""SELECT count(*) FROM duckdb_constraints() WHERE schema_name = 'raw' AND table_name = 'customs_rows'
                      AND constraint_type = 'NOT NULL' AND constraint_column_names = ['partner_code']""").fetchone()[0]:
        con.execute("ALTER TABLE raw.customs_rows ALTER COLUMN partner_code DROP NOT NULL")
    _comment(con)
    if not had_months:
        con.execute("INSERT INTO raw.customs_load_months SELECT DISTINCT load_id, period_start FROM raw.customs_rows")
    for table in RETIRED_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _has_column(con: duckdb.DuckDBPyConnection, schema: str, table: str, column: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE schema_name = $s AND table_name = $t AND column_name = $c",
        {"s": schema, "t": table, "c": column},
    ).fetchone()[0])


def _comment(con: duckdb.DuckDBPyConnection) -> None:
    """Write the comments that differ from the file's: an up-to-date file is not written at all
    (a build's working copy stays byte-identical to the served file it was copied from)."""
    have_tables = dict(con.execute(
        "SELECT schema_name || '.' || table_name, comment FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name IN ('raw', 'audit')").fetchall())
    have_columns = {(t, c): comment for t, c, comment in con.execute(
        "SELECT schema_name || '.' || table_name, column_name, comment FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name IN ('raw', 'audit')").fetchall()}
    for table, comment in TABLE_COMMENTS.items():
        if have_tables.get(table) != comment:
            con.execute(f"COMMENT ON TABLE {table} IS '{sql_str(comment)}'")
    for table, columns in COLUMN_COMMENTS.items():
        for column, comment in columns.items():
            if have_columns.get((table, column)) != comment:
                con.execute(f"COMMENT ON COLUMN {table}.{column} IS '{sql_str(comment)}'")


def sql_str(path: Path | str) -> str:
    """A path inside a SQL string literal."""
    return str(path).replace("'", "''")


def wal_path(path: Path) -> Path:
    """The WAL DuckDB keeps beside a database file: named after the path, not the file."""
    return path.with_name(path.name + ".wal")


def discard_wal(path: Path) -> None:
    """Remove the WAL of a file that is about to be created or replaced.

    A WAL belongs to one database file, but DuckDB does not check that: opening a file
    (read-only too) replays whatever `<file>.wal` lies beside it. Left from a killed process,
    it would be applied to the new file that now has that name.
    """
    wal_path(path).unlink(missing_ok=True)
