"""Load a UN Comtrade download (mirror/comtrade/) whole into raw.comtrade_rows, or reject it.

The same gate as a GACC file's (lib/ingest/file_loader.py), with the same pieces: the file is
transcoded to a staged copy whose bytes are the ones hashed, read strictly as text, checked in
SQL with the row and column at fault named (RowChecks.reject_rows), and inserted with its
lineage in one transaction, or recorded in audit.rejected_files by the caller. The format's
knowledge is in lib/ingest/comtrade_format.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from dagster_project.lib.ingest import comtrade_format as fmt
from dagster_project.lib.ingest.landing_files import TEXT_SUFFIXES, LandingFile, load_id_for
from dagster_project.lib.ingest.load_record import LoadResult, Rejected
from dagster_project.lib.ingest.row_checks import RowChecks
from dagster_project.lib.ingest.settling import check_unchanged
from dagster_project.lib.ingest.staged_csv import csv_error, first_line, header_name, stage_rows, staged_download

_NUMBER = "TRY_CAST(nullif(trim({c}), '') AS DECIMAL(38, 4))"
_FLAG = "CASE lower(trim({c})) WHEN 'true' THEN true WHEN '1' THEN true WHEN 'false' THEN false WHEN '0' THEN false END"


class ComtradeLoader:
    def __init__(self, con: duckdb.DuckDBPyConnection, staging_dir: Path, run_id: str | None):
        self.con = con
        self.staging_dir = staging_dir
        self.run_id = run_id
        self.checks = RowChecks(con, dt.date.today())

    def load(self, lf: LandingFile, sha: str, generation: int = 0) -> LoadResult:
        if lf.path.suffix.lower() not in TEXT_SUFFIXES:
            raise Rejected(f"not a CSV file (suffix '{lf.path.suffix}'): download the data from Comtrade+ as CSV")
        load_id = load_id_for(lf.rel, sha, generation)
        try:
            with staged_download(lf, sha, self.staging_dir, load_id) as (staged, shape):
                return self._load_staged(lf, sha, load_id, staged, shape)
        finally:
            self.con.execute("DROP TABLE IF EXISTS _ct_stage")
            self.con.execute("DROP TABLE IF EXISTS _ct_rows")

    def _load_staged(self, lf: LandingFile, sha: str, load_id: str, staged: Path, shape) -> LoadResult:
        raw_header = first_line(staged)
        if not raw_header:
            raise Rejected("line 1 is empty: the header row (freqCode, period, reporterCode, ...) must be the first line")
        try:
            positions = fmt.map_header(raw_header)
        except fmt.HeaderError as exc:
            raise Rejected(str(exc)) from None
        if not shape.ends_with_line_break:
            tail = shape.last_line or ""
            raise Rejected(
                f"line {shape.lines} (row {shape.lines - 1}): the file ends mid-row, without a line break after "
                f"{tail[-40:]!r}: the download was probably truncated; download it again"
            )
        if shape.blank_lines:
            raise Rejected(f"line {shape.blank_lines[0]} is empty, between data rows: Comtrade downloads have none; "
                           "download the file again")
        by_position = {i: name for name, i in positions.items()}
        columns = tuple(by_position.get(i, f"_ignored{i}") for i in range(len(raw_header)))
        names = {c: header_name(raw_header[i]) or f"column {i + 1}" for i, c in enumerate(columns)}
        try:
            stage_rows(self.con, "_ct_stage", staged, columns)
        except duckdb.Error as exc:
            message = csv_error(str(exc), raw_header, shape).replace("a GACC download as saved by the platform",
                                                                     "a Comtrade download as written by the portal")
            raise Rejected(message) from None
        row_count = self.con.execute("SELECT count(*) FROM _ct_stage").fetchone()[0]
        if row_count == 0:
            raise Rejected("header only, no data rows: the query returned nothing; nothing to load")
        self._check_rows(positions, names)
        return self._insert(lf, sha, load_id, shape, positions, row_count)

    def _check_rows(self, positions: dict[str, int], names: dict[str, str]) -> None:
        reject = lambda where, column, what: self.checks.reject_rows(where, column, names, what, table="_ct_stage")  # noqa: E731
        reject("coalesce(trim(freqCode), '') NOT IN ('M', 'A')", "freqCode", "the frequency must be M (monthly) or A (annual)")
        reject("""NOT CASE trim(freqCode)
                  WHEN 'M' THEN coalesce(regexp_full_match(trim(period), '(19[6-9][0-9]|20[0-9]{2})(0[1-9]|1[0-2])'), false)
                  ELSE coalesce(regexp_full_match(trim(period), '(19[6-9][0-9]|20[0-9]{2})'), false) END""",
               "period", "the period must be YYYYMM for a monthly row and YYYY for an annual one")
        for column in ("reporterCode", "partnerCode"):
            reject(f"NOT coalesce(regexp_full_match(trim({column}), '[0-9]{{1,4}}'), false)", column,
                   "UN M49 country codes are numbers (156 China, 842 United States, 0 World)")
        reject("coalesce(trim(flowCode), '') = ''", "flowCode", "every row needs its flow (M imports, X exports ...)")
        reject("coalesce(trim(cmdCode), '') = ''", "cmdCode", "every row needs its commodity code")
        reject(f"TRY_CAST(trim(qtyUnitCode) AS INTEGER) IS NULL OR TRY_CAST(trim(qtyUnitCode) AS INTEGER) NOT IN "
               f"({', '.join(str(u) for u in fmt.QTY_UNITS)})", "qtyUnitCode",
               "unknown quantity unit: UN Comtrade's codes are -1 (none) and 1-13 (8 = kg)")
        for column in (c for c in fmt.NUMBERS if c in positions):
            reject(f"nullif(trim({column}), '') IS NOT NULL AND {_NUMBER.format(c=column)} IS NULL", column,
                   "not a number (Comtrade writes plain numbers, '.' for decimals, no thousands separators)")
            reject(f"{_NUMBER.format(c=column)} < 0", column, "negative numbers are not valid trade figures")

        opt = lambda c: f"trim(s.{c})" if c in positions else "NULL"  # noqa: E731
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _ct_rows AS
            SELECT s.row_number, trim(s.freqCode) AS freq, trim(s.flowCode) AS flow,
                   CAST(CAST(trim(s.partnerCode) AS INTEGER) AS VARCHAR) AS partner_code,
                   coalesce(CAST(TRY_CAST({opt('partner2Code')} AS INTEGER) AS VARCHAR), '0') AS partner2_code,
                   coalesce(nullif({opt('customsCode')}, ''), 'C00') AS customs_code,
                   coalesce(CAST(TRY_CAST({opt('motCode')} AS INTEGER) AS VARCHAR), '0') AS mot_code,
                   trim(s.cmdCode) AS cmd_code, s.* EXCLUDE (row_number)
            FROM _ct_stage s""")
        self.con.execute("""
            CREATE OR REPLACE TEMP TABLE _ct_rows AS
            SELECT CASE WHEN freq <> 'M' THEN 'not_monthly' WHEN flow <> 'M' THEN 'not_import'
                        WHEN partner_code <> '156' THEN 'not_china'
                        WHEN partner2_code <> '0' OR customs_code <> 'C00' OR mot_code <> '0' THEN 'breakdown'
                        WHEN NOT regexp_full_match(cmd_code, '[0-9]{6}') THEN 'not_hs6' END AS ignored, *
            FROM _ct_rows""")
        counts = dict(self.con.execute("SELECT coalesce(ignored, 'kept'), count(*) FROM _ct_rows GROUP BY 1").fetchall())
        if not counts.get("kept"):
            flows = [r[0] for r in self.con.execute(
                "SELECT DISTINCT flow FROM _ct_rows WHERE freq = 'M' ORDER BY 1").fetchall()]
            if not any(c for k, c in counts.items() if k != "not_monthly"):
                raise Rejected("annual file: every row has freqCode A; the mirror compares months: download "
                               "monthly data (Frequency: Monthly, freqCode M)")
            if flows and "M" not in flows:
                raise Rejected(f"wrong flow: no import rows (flowCode {', '.join(flows)}); the mirror reads what "
                               "partners report importing from China: download Imports (flowCode M)")
        kept = "ignored IS NULL"
        reject_kept = lambda where, column, what: self.checks.reject_rows(  # noqa: E731
            f"{kept} AND {where}", column, names, what, table="_ct_rows")
        reject_kept("NOT coalesce(regexp_full_match(trim(reporterISO), '[A-Z]{3}'), false)", "reporterISO",
                    "the reporter's ISO3 code (USA, DEU ...) is required on the rows kept")
        reject_kept(f"""row_number IN (SELECT row_number FROM (
                        SELECT row_number, count(*) OVER (PARTITION BY trim(reporterCode), trim(period), partner_code, cmd_code) AS n
                        FROM _ct_rows WHERE {kept}) WHERE n > 1)""",
                    "cmdCode", "the same reporter, month, partner and code appears twice among the totals rows")
        self.counts = counts

    def _insert(self, lf: LandingFile, sha: str, load_id: str, shape, positions: dict[str, int], row_count: int) -> LoadResult:
        opt = lambda c: f"nullif(trim({c}), '')" if c in positions else "NULL"  # noqa: E731
        num = lambda c: _NUMBER.format(c=c) if c in positions else "NULL"  # noqa: E731
        flag = lambda c: _FLAG.format(c=c) if c in positions else "NULL"  # noqa: E731
        counts = self.counts
        warnings = []
        if not counts.get("kept"):
            warnings.append("no monthly imports from China at HS6 in this file: nothing kept")
        loaded_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        check_unchanged(lf, "while it was loaded")
        self.con.execute("BEGIN TRANSACTION")
        try:
            load_seq = self.con.execute("SELECT nextval('raw.load_seq')").fetchone()[0]
            self.con.execute(
                f"""INSERT INTO raw.comtrade_rows
                SELECT $load_id, $rel, $sha, $loaded_at, row_number,
                       strptime(trim(period), '%Y%m')::DATE, CAST(CAST(trim(reporterCode) AS INTEGER) AS VARCHAR),
                       trim(reporterISO), {opt('reporterDesc')}, flow, partner_code, {opt('partnerISO')},
                       cmd_code, {opt('cmdDesc')}, CAST(trim(qtyUnitCode) AS INTEGER), {opt('qtyUnitAbbr')},
                       {num('qty')}, {num('netWgt')}, {num('cifvalue')}, {num('fobvalue')}, {num('primaryValue')},
                       {flag('isQtyEstimated')}, {flag('isReported')}
                FROM _ct_rows WHERE ignored IS NULL ORDER BY row_number""",
                {"load_id": load_id, "rel": lf.rel, "sha": sha, "loaded_at": loaded_at},
            )
            start, end, reporters = self.con.execute(
                "SELECT min(month), max(month), string_agg(DISTINCT reporter_iso3, ',' ORDER BY reporter_iso3) "
                "FROM raw.comtrade_rows WHERE load_id = $id", {"id": load_id}).fetchone()
            self.con.execute(
                """INSERT INTO raw.comtrade_loads VALUES ($load_id, $seq, $rel, $sha, $size, $encoding, 'column',
                   $start, $end, $rows, $kept, $not_monthly, $not_import, $not_china, $breakdown, $not_hs6,
                   $reporters, $warnings, $run_id, $loaded_at)""",
                {"load_id": load_id, "seq": load_seq, "rel": lf.rel, "sha": sha, "size": shape.size,
                 "encoding": shape.encoding, "start": start, "end": end, "rows": row_count,
                 "kept": counts.get("kept", 0), "not_monthly": counts.get("not_monthly", 0),
                 "not_import": counts.get("not_import", 0), "not_china": counts.get("not_china", 0),
                 "breakdown": counts.get("breakdown", 0), "not_hs6": counts.get("not_hs6", 0),
                 "reporters": reporters, "warnings": "; ".join(warnings) or None, "run_id": self.run_id,
                 "loaded_at": loaded_at},
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return LoadResult(lf.rel, load_id, counts.get("kept", 0), warnings, "column", start, end)
