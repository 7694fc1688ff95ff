"""The per-file gate: validate one landing file and load it whole, or reject it with a reason.

A file is read whole into a DuckDB temp table, validated there with SQL (lib/ingest/row_checks.py),
and then either inserted in one transaction with its lineage (file, SHA-256, load id, row number)
or rejected with a reason that names the row and column at fault. Nothing is ever half-loaded.
A file that changes while it is read or loaded is deferred (settling.Deferred), not judged.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import duckdb

from dagster_project.lib.ingest import gacc_format as fmt
from dagster_project.lib.ingest.landing_files import TEXT_SUFFIXES, LandingFile, in_flow_folder, load_id_for
from dagster_project.lib.ingest.load_record import LoadResult, Rejected, load_warnings
from dagster_project.lib.ingest.row_checks import RowChecks, column_label
from dagster_project.lib.ingest.settling import check_unchanged
from dagster_project.lib.ingest.staged_csv import (
    csv_error,
    first_line,
    header_name,
    stage_columns,
    stage_rows,
    staged_download,
)
from dagster_project.lib.ingest.transcode import Transcoded


class FileLoader:
    """Validates and loads one landing file through a DuckDB connection to the working copy."""

    def __init__(self, con: duckdb.DuckDBPyConnection, staging_dir: Path, today: dt.date, run_id: str | None):
        self.con = con
        self.staging_dir = staging_dir
        self.today = today
        self.run_id = run_id
        self.checks = RowChecks(con, today)

    # -- the load ------------------------------------------------------------------------
    def load(self, lf: LandingFile, sha: str, generation: int = 0) -> LoadResult:
        rel = lf.rel
        if not in_flow_folder(rel):
            raise Rejected(
                "file is not inside a flow folder: put exports under exports/ and imports under imports/ "
                "(GACC files do not say which flow they hold)"
            )
        flow = rel.split("/")[0]
        if lf.path.suffix.lower() not in TEXT_SUFFIXES:
            raise Rejected(
                f"not a CSV file (suffix '{lf.path.suffix}'): download the query as CSV from the GACC platform"
            )
        load_id = load_id_for(rel, sha, generation)
        with staged_download(lf, sha, self.staging_dir, load_id) as (staged, shape):
            return self._load_staged(lf, rel, flow, sha, load_id, staged, shape)

    def _load_staged(self, lf, rel, flow, sha, load_id, staged: Path, shape: Transcoded) -> LoadResult:
        raw_header = first_line(staged)
        if not raw_header:
            if shape.last_content_line == 0:
                raise Rejected("empty file: no header row, only blank lines; the download failed, download it again")
            raise Rejected("line 1 is empty: the header row (数据年月, 商品编码, ... or Date of data, Commodity code, ...) "
                           "must be the first line")
        try:
            header = fmt.map_header(raw_header)
        except fmt.HeaderError as exc:
            hint = ""
            separator = next((name for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'"))
                              if len(raw_header) == 1 and sep in raw_header[0]), None)
            if separator:
                hint = (f"; the values are separated by {separator}, not commas: download the CSV again from the "
                        "platform (a spreadsheet set to another list separator re-saved it)")
            elif shape.encoding == "gb18030" and not fmt.recognised_headers(raw_header):
                hint = ("; no header was recognised when the file is read as GB18030: if it was saved in another "
                        "encoding (Big5, Shift-JIS, UTF-16 ...), save it as UTF-8 or GB18030")
            raise Rejected(f"line 1 {exc}{hint}") from None

        header_names = {canonical: header_name(raw_header[i]) for i, canonical in enumerate(header.columns)}
        columns = stage_columns(header, raw_header)
        try:
            stage_rows(self.con, "_stage", staged, columns)
        except duckdb.Error as exc:
            raise Rejected(csv_error(str(exc), raw_header, shape)) from None

        self._number_rows_by_line(shape, header, header_names)
        self._check_last_line(shape, header, header_names)
        empty_rows = self._drop_empty_rows(columns)
        row_count = self.con.execute("SELECT count(*) FROM _stage").fetchone()[0]
        if row_count == 0:
            raise Rejected("header only, no data rows: the query returned nothing; nothing to load")

        self.checks.codes(header, header_names)
        period_source, period_warning = self.checks.period(header, header_names, lf)
        self.checks.numbers(header, header_names)
        unit_conversions = self.checks.units(header, header_names)
        self.checks.keys(header, header_names)

        unknown_partners = self.con.execute(
            "SELECT count(*) FROM _stage s ANTI JOIN _partner p ON p.partner_code = lpad(trim(s.partner_code), 3, '0')"
        ).fetchone()[0] if header.has("partner_code") else 0
        unknown_codes = self.con.execute("SELECT count(*) FROM _stage_units WHERE unknown_code").fetchone()[0]
        warnings = load_warnings(row_count, empty_rows, period_warning, unknown_partners, unknown_codes)

        loaded_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        opt = lambda c: f"nullif(trim(s.{c}), '')" if header.has(c) else "NULL"  # noqa: E731
        value_col = "value_usd" if header.currency == "USD" else "value_cny"

        check_unchanged(lf, "while it was loaded")
        self.con.execute("BEGIN TRANSACTION")
        try:
            load_seq = self.con.execute("SELECT nextval('raw.load_seq')").fetchone()[0]
            self.con.execute(
                f"""INSERT INTO raw.customs_rows
                SELECT $load_id, $rel, $sha, $loaded_at, s.row_number, $flow, $currency,
                       p.period_start, p.period_end, p.period_end > p.period_start,
                       trim(s.hs8), {opt('commodity_name')},
                       {"lpad(trim(s.partner_code), 3, '0')" if header.has('partner_code') else 'NULL'}, {opt('partner_name')},
                       {opt('regime_code')}, {opt('regime_name')},
                       {opt('province_code')}, {opt('province_name')},
                       gacc_number(s.quantity), gacc_text(s.unit), u.unit_code, u.declared_unit_code, u.unit_factor,
                       {'gacc_number(s.quantity2)' if header.has('quantity2') else 'NULL'},
                       {"gacc_text(s.unit2)" if header.has('unit2') else 'NULL'},
                       gacc_number(s.{value_col})
                FROM _stage s
                JOIN _period p USING (row_number)
                JOIN _stage_units u USING (row_number)
                ORDER BY s.row_number""",
                {"load_id": load_id, "rel": rel, "sha": sha, "loaded_at": loaded_at, "flow": flow,
                 "currency": header.currency},
            )
            # _period holds a row per row just inserted: the load's span and months come from it,
            # not from a scan of raw.customs_rows
            period_start, period_end = self.con.execute("SELECT min(period_start), max(period_end) FROM _period").fetchone()
            self.con.execute("INSERT INTO raw.customs_load_months SELECT DISTINCT $id, period_start FROM _period",
                             {"id": load_id})
            self.con.execute(
                """INSERT INTO raw.customs_loads VALUES
                ($load_id, $seq, $rel, $sha, $size, $flow, $encoding, $lang, $currency, $dims, $period_source,
                 $start, $end, $rows, $conversions, $warnings, $run_id, $loaded_at)""",
                {"load_id": load_id, "seq": load_seq, "rel": rel, "sha": sha, "size": shape.size,
                 "flow": flow, "encoding": shape.encoding, "lang": header.language, "currency": header.currency,
                 "dims": ",".join(header.dimensions), "period_source": period_source, "start": period_start, "end": period_end,
                 "rows": row_count, "conversions": unit_conversions, "warnings": "; ".join(warnings) or None,
                 "run_id": self.run_id, "loaded_at": loaded_at},
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return LoadResult(rel, load_id, row_count, warnings, period_source, period_start, period_end)

    # -- the shape of the file -----------------------------------------------------------
    def _number_rows_by_line(self, shape: Transcoded, header: fmt.Header, names: dict[str, str]) -> None:
        """Make row_number = line - 1 even when empty lines (which DuckDB skips) sit between rows."""
        parsed = self.con.execute("SELECT count(*) FROM _stage").fetchone()[0]
        content_lines = max(0, shape.last_content_line - 1 - len(shape.blank_lines))
        if parsed != content_lines:
            # a quoted value with a line break inside: rows no longer match lines
            cols = [c for c in header.columns if not c.startswith("_")]
            found = self.con.execute(
                f"""SELECT row_number, name FROM (UNPIVOT (SELECT row_number, {', '.join(cols)} FROM _stage)
                    ON {', '.join(cols)} INTO NAME name VALUE value)
                    WHERE value LIKE '%' || chr(10) || '%' OR value LIKE '%' || chr(13) || '%'
                    ORDER BY row_number LIMIT 1"""
            ).fetchall()
            if found:
                raise Rejected(
                    f"row {found[0][0]}, column '{names[found[0][1]]}': a quoted value holds a line break, so rows no "
                    f"longer match lines ({parsed} rows on {content_lines} lines); GACC downloads have one row per "
                    "line: download the file again"
                )
            raise Rejected(
                f"{parsed} rows on {content_lines} lines: the file's line breaks are neither CRLF nor LF "
                "(a bare CR?); GACC downloads use CRLF: download the file again"
            )
        if not shape.blank_lines:
            return
        self.con.execute(
            """CREATE OR REPLACE TEMP TABLE _line_map AS
               SELECT row_number() OVER (ORDER BY line) AS ordinal, line
               FROM range(2, $last + 1) t(line) WHERE NOT list_contains($blank, line)""",
            {"last": shape.last_content_line, "blank": list(shape.blank_lines)},
        )
        self.con.execute(
            """CREATE OR REPLACE TEMP TABLE _stage AS
               SELECT m.line - 1 AS row_number, s.* EXCLUDE (row_number)
               FROM _stage s JOIN _line_map m ON m.ordinal = s.row_number ORDER BY 1"""
        )
        self.con.execute("DROP TABLE _line_map")

    def _check_last_line(self, shape: Transcoded, header: fmt.Header, names: dict[str, str]) -> None:
        """A last line without a line break that ends in an unquoted value may be a download cut off mid-value."""
        tail = (shape.last_line or "").rstrip()
        if shape.ends_with_line_break or tail.endswith(('"', ",")):
            return
        last = [c for c in header.columns if not c.startswith("_ignored")][-1]
        value = next(csv.reader([tail]), [""])[-1] if tail else ""
        raise Rejected(
            f"line {shape.lines} (row {shape.lines - 1}), {column_label(names, last)}: the file ends mid-row, without a "
            f"line break after the last value {value!r}, which may be cut short: "
            "the download was probably truncated; download it again"
        )

    def _drop_empty_rows(self, columns: tuple[str, ...]) -> int:
        """Rows whose every field is blank (a spreadsheet's trailing ',,,,' lines) carry nothing: drop them."""
        blank = " AND ".join(f"coalesce(trim({c}), '') = ''" for c in columns)
        return self.con.execute(f"DELETE FROM _stage WHERE {blank}").fetchone()[0]
