"""Load GACC downloads from the landing directory into raw.customs_rows, one load per file.

A file is read whole into a DuckDB temp table, validated there with SQL, and then either
inserted in one transaction with its lineage (file, SHA-256, load id, row number) or
recorded in audit.rejected_files with a reason that names the row and column at fault.
Nothing is ever half-loaded, and the landing directory is only ever read.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import re
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.lib.ingest import gacc_format as fmt
from dagster_project.lib.settings import SEEDS_DIR
from dagster_project.lib.ingest.transcode import EncodingError, Transcoded, sha256_of, transcode_to_utf8

FLOWS = ("exports", "imports")
TEXT_SUFFIXES = (".csv", ".txt")


class Rejected(Exception):
    """The file cannot be loaded; the message is what the user reads."""


@dataclass
class LoadResult:
    file_path: str
    load_id: str
    row_count: int
    warnings: list[str] = field(default_factory=list)
    period_source: str | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None


@dataclass
class Rejection:
    file_path: str
    file_sha256: str | None
    reason: str


@dataclass
class IngestReport:
    loaded: list[LoadResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already loaded (this path and content, or this content)
    rejected: list[Rejection] = field(default_factory=list)
    duplicate_of: dict[str, str] = field(default_factory=dict)  # skipped path -> the path its content was loaded from
    batched: int = 0  # of the loaded files, how many went in many-per-statement (the rest one by one)
    hashed: int = 0  # files whose SHA-256 was computed (the others' were known from an earlier build)

    @property
    def rows_loaded(self) -> int:
        return sum(r.row_count for r in self.loaded)


@dataclass(frozen=True)
class LandingFile:
    path: Path
    rel: str  # posix path relative to the landing directory


def discover(landing_dir: Path) -> list[LandingFile]:
    """Every candidate file under the landing directory, oldest first (later files revise earlier ones)."""
    if not landing_dir.is_dir():
        return []
    found = []
    for root, dirs, files in os.walk(landing_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith("."):
                continue
            path = Path(root) / name
            found.append(LandingFile(path, path.relative_to(landing_dir).as_posix()))
    return sorted(found, key=lambda f: (_mtime(f.path), f.rel))


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def load_id_for(rel: str, sha: str, generation: int = 0) -> str:
    """A load's id: its file and content, and how many times that same pair was loaded before
    (a file changed back to an earlier version is loaded again, as the latest release)."""
    key = f"{rel}\x00{sha}" + (f"\x00{generation}" if generation else "")
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- reference data

_MACROS_SQL = r"""
CREATE OR REPLACE TEMP MACRO gacc_clean(x) AS
    CASE WHEN x IS NULL OR trim(x) IN ({null_tokens}) THEN NULL
         ELSE replace(replace(replace(replace(trim(x), ',', ''), '，', ''), ' ', ''), '{nbsp}', '') END;
-- DECIMAL(18, 4) is a 64-bit integer inside DuckDB (about twice as fast to parse and compare as
-- DECIMAL(38, 4)) and holds 14 integer digits: more than any single GACC row's kg or dollars.
CREATE OR REPLACE TEMP MACRO gacc_number(x) AS TRY_CAST(gacc_clean(x) AS DECIMAL(18, 4));
CREATE OR REPLACE TEMP MACRO gacc_text(x) AS
    CASE WHEN x IS NULL OR trim(x) IN ({null_tokens}) THEN NULL
         ELSE trim(regexp_replace(replace(x, '{nbsp}', ' '), '\s+', ' ', 'g')) END;
"""

# The platform's "no value" tokens as a SQL list, for `x IN (...)`.
NULL_TOKENS_SQL = ", ".join("'" + t.replace("'", "''") + "'" for t in fmt.NULL_TOKENS)

# table -> (seed file, SELECT list, WHERE). The codes are kept well formed and each once: the
# batch path joins on them and trusts a match's form.
_REFERENCE_TABLES = {
    "_unit_alias": ("gacc_unit_aliases.csv", "SELECT DISTINCT lower(trim(alias)) AS alias, unit_code", "true"),
    "_unit": ("gacc_units.csv", "SELECT unit_code, unit_name_zh, unit_name_en, base_unit_code, "
                                "CAST(to_base_factor AS DECIMAL(38, 6)) AS to_base_factor", "true"),
    "_commodity": ("gacc_commodities.csv", "SELECT DISTINCT ON (hs8) hs8, unit1_code AS declared_unit_code",
                   "regexp_full_match(hs8, '[0-9]{8}')"),
    "_partner": ("gacc_partners.csv", "SELECT DISTINCT partner_code", "regexp_full_match(partner_code, '[0-9]{3}')"),
}


def load_reference_tables(con: duckdb.DuckDBPyConnection, seeds_dir: Path = SEEDS_DIR) -> None:
    """The unit, commodity and partner lists the gate checks against (the same CSVs dbt seeds)."""
    con.execute(_MACROS_SQL.replace("{null_tokens}", NULL_TOKENS_SQL).replace("{nbsp}", "\u00a0"))
    for table, (filename, select, where) in _REFERENCE_TABLES.items():
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS {select} FROM read_csv($path, header=true, all_varchar=true) WHERE {where}",
            {"path": str(seeds_dir / filename)},
        )


# --------------------------------------------------------------------------- one file


def _first_line(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8", newline="") as handle:
        line = handle.readline().rstrip("\r\n")
        if not line.strip():
            return []
        return next(csv.reader([line]))


def _period_from_name(name: str) -> tuple[dt.date, dt.date] | None:
    """The first month (YYYYMM) in a file name, or the range YYYYMM-YYYYMM it starts; None if there is none."""
    months = [(m.start(), m.end(), _yyyymm(m.group())) for m in fmt.MONTH_IN_NAME.finditer(name)]
    months = [m for m in months if m[2] is not None]
    if not months:
        return None
    _, end_of_first, start = months[0]
    if len(months) > 1 and fmt.RANGE_SEPARATOR.fullmatch(name[end_of_first:months[1][0]]):
        end = months[1][2]
        return (start, end) if end >= start else None  # an inverted range is no period
    return start, start


def _yyyymm(text: str) -> dt.date | None:
    year, month = int(text[:4]), int(text[4:])
    if not (1990 <= year <= 2100 and 1 <= month <= 12):
        return None
    return dt.date(year, month, 1)


def _header_column(raw_header: list[str], position: int) -> str:
    name = raw_header[position - 1].strip().lstrip("\ufeff").strip() if 0 < position <= len(raw_header) else ""
    return f"column {position}" + (f" '{name}'" if name else "")


def _csv_error(message: str, raw_header: list[str], shape: Transcoded) -> str:
    """DuckDB's CSV error, said in terms of the download: line, column and the likely cause."""
    line_match = re.search(r"[Ll]ine:? (\d+)", message)
    line = int(line_match.group(1)) if line_match else None
    is_last = line is not None and line >= shape.last_content_line
    counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
    if counts:
        expected, found = int(counts.group(1)), int(counts.group(2))
        if found < expected:
            what = f"the row has {found} of the header's {expected} columns: it stops after {_header_column(raw_header, found)}"
        else:
            what = (f"the row has {found} values where the header has {expected} columns "
                    "(a value with an unquoted comma, or a row pasted from elsewhere?)")
    elif "unterminated quote" in message:
        what = "a quoted value is never closed"
        if is_last and shape.last_line is not None:
            fields = next(csv.reader([shape.last_line]), [])
            what += f": the row stops inside {_header_column(raw_header, max(1, len(fields)))}"
    else:
        first = message.strip().splitlines()[0] if message.strip() else message
        what = "not a well-formed CSV row: " + first.replace("Invalid Input Error: ", "")[:300]
    where = f"line {line} (row {line - 1}): " if line and line > 1 else (f"line {line}: " if line else "")
    if is_last:
        cause = "; it is the last line, so the download was cut off mid-row (truncated): download it again"
    else:
        cause = "; the file is not a GACC download as saved by the platform: download it again"
    return f"{where}{what}{cause}"


def load_warnings(row_count: int, empty_rows: int, period_warning: str | None,
                  unknown_partners: int, unknown_codes: int) -> list[str]:
    """What a loaded file's record says about it (both load paths word it the same)."""
    warnings = []
    if row_count == fmt.PLATFORM_ROW_CAP:
        warnings.append(
            f"exactly {fmt.PLATFORM_ROW_CAP:,} data rows: the GACC platform stops downloads at this limit, "
            "so this download was probably truncated; split the query (by month, partner or chapter) and download again"
        )
    if empty_rows:
        warnings.append(f"{empty_rows} empty row(s) (every field blank) ignored")
    if period_warning:
        warnings.append(period_warning)
    if unknown_partners:
        warnings.append(f"{unknown_partners} row(s) with partner codes not in the GACC partner list")
    if unknown_codes:
        warnings.append(f"{unknown_codes} row(s) with commodity codes not in the GACC commodity list "
                        "(their unit is taken as written)")
    return warnings


def period_name_warning(outside: int, period_header: str, in_name: tuple[dt.date, dt.date]) -> str:
    return (f"{outside} row(s) with a {period_header} outside the period in the file name "
            f"({in_name[0]:%Y%m}" + (f"-{in_name[1]:%Y%m}" if in_name[1] != in_name[0] else "") + "); the column is used")


def unit_conversions_text(conversions: list[tuple]) -> str | None:
    """(file unit, declared unit, factor, rows) in sorted order -> the load record's unit_conversions."""
    if not conversions:
        return None
    return "; ".join(f"{n} row(s) converted {a} -> {b} (x{f.normalize():f})" for a, b, f, n in conversions)


class FileLoader:
    """Validates and loads one landing file through a DuckDB connection to the working copy."""

    def __init__(self, con: duckdb.DuckDBPyConnection, staging_dir: Path, today: dt.date, run_id: str | None):
        self.con = con
        self.staging_dir = staging_dir
        self.today = today
        self.run_id = run_id

    # -- helpers -------------------------------------------------------------------------
    def _col(self, header_names: dict[str, str], canonical: str) -> str:
        return f"column '{header_names[canonical]}'"

    def _reject_rows(self, where: str, column: str, header_names: dict[str, str], what: str,
                     shown_sql: str | None = None, table: str = "_stage") -> None:
        """Reject the file if any row matches `where`, naming the first rows (row, line) and the column."""
        rows = self.con.execute(
            f"SELECT row_number, {shown_sql or column} FROM {table} WHERE {where} ORDER BY row_number LIMIT 3"
        ).fetchall()
        if not rows:
            return
        total = self.con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]
        shown = "; ".join(f"row {r} (line {r + 1}): {v!r}" for r, v in rows)
        more = f" and {total - len(rows)} more row(s)" if total > len(rows) else ""
        raise Rejected(f"{self._col(header_names, column)}: {what} — {shown}{more}")

    # -- the load ------------------------------------------------------------------------
    def load(self, lf: LandingFile, landing_dir: Path, sha: str, generation: int = 0) -> LoadResult:
        rel = lf.rel
        parts = rel.split("/")
        if len(parts) < 2 or parts[0] not in FLOWS:
            raise Rejected(
                "file is not inside a flow folder: put exports under exports/ and imports under imports/ "
                "(GACC files do not say which flow they hold)"
            )
        flow = parts[0]
        if lf.path.suffix.lower() not in TEXT_SUFFIXES:
            raise Rejected(
                f"not a CSV file (suffix '{lf.path.suffix}'): download the query as CSV from the GACC platform"
            )
        if lf.path.stat().st_size == 0:
            raise Rejected("empty file (0 bytes): the download failed; download it again")

        load_id = load_id_for(rel, sha, generation)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        staged = self.staging_dir / f"{load_id}.csv"
        try:
            try:
                shape = transcode_to_utf8(lf.path, staged)
            except EncodingError as exc:
                raise Rejected(f"encoding: {exc}") from None
            return self._load_staged(lf, rel, flow, sha, load_id, staged, shape)
        finally:
            staged.unlink(missing_ok=True)

    def _load_staged(self, lf, rel, flow, sha, load_id, staged: Path, shape: Transcoded) -> LoadResult:
        raw_header = _first_line(staged)
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

        header_names = {canonical: raw_header[i].strip().lstrip("\ufeff").strip() for i, canonical in enumerate(header.columns)}
        # GACC rows end with a comma, and so does the header. DuckDB accepts one trailing empty value
        # after the declared columns, so the header's empty last column is not declared: a row with
        # a value too many (an unquoted '1,000') is then an error instead of shifting every value.
        stage_columns = list(header.columns)
        if len(stage_columns) > 1 and not raw_header[-1].strip():
            stage_columns.pop()
        columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in stage_columns) + "}"
        try:
            self.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _stage AS
                    SELECT row_number() OVER () AS row_number, *
                    FROM read_csv($path, header=true, auto_detect=false, columns={columns},
                                  delim=',', quote='"', escape='"', strict_mode=true,
                                  null_padding=false, max_line_size=1048576)""",
                {"path": str(staged)},
            )
        except duckdb.Error as exc:
            raise Rejected(_csv_error(str(exc), raw_header, shape)) from None

        self._number_rows_by_line(shape, header, header_names)
        self._check_last_line(shape, header, header_names)
        empty_rows = self._drop_empty_rows(stage_columns)
        row_count = self.con.execute("SELECT count(*) FROM _stage").fetchone()[0]
        if row_count == 0:
            raise Rejected("header only, no data rows: the query returned nothing; nothing to load")

        self._validate_codes(header, header_names)
        period_source, period_warning = self._period(header, header_names, lf)
        self._validate_numbers(header, header_names)
        unit_conversions = self._resolve_units(header, header_names)
        self._validate_keys(header, header_names)

        unknown_partners = self.con.execute(
            "SELECT count(*) FROM _stage s ANTI JOIN _partner p ON p.partner_code = lpad(trim(s.partner_code), 3, '0')"
        ).fetchone()[0]
        unknown_codes = self.con.execute("SELECT count(*) FROM _stage_units WHERE unknown_code").fetchone()[0]
        warnings = load_warnings(row_count, empty_rows, period_warning, unknown_partners, unknown_codes)

        loaded_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        dims = ["hs8", "partner"] + [d for d in ("regime", "province") if header.has(f"{d}_code")]
        opt = lambda c: f"nullif(trim(s.{c}), '')" if header.has(c) else "NULL"  # noqa: E731
        value_col = "value_usd" if header.currency == "USD" else "value_cny"

        self.con.execute("BEGIN TRANSACTION")
        try:
            load_seq = self.con.execute("SELECT nextval('raw.load_seq')").fetchone()[0]
            self.con.execute(
                f"""INSERT INTO raw.customs_rows
                SELECT $load_id, $rel, $sha, $loaded_at, s.row_number, $flow, $currency,
                       p.period_start, p.period_end, p.period_end > p.period_start,
                       trim(s.hs8), {opt('commodity_name')},
                       lpad(trim(s.partner_code), 3, '0'), {opt('partner_name')},
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
            period_start, period_end = self.con.execute(
                "SELECT min(period_start), max(period_end) FROM raw.customs_rows WHERE load_id = $id", {"id": load_id}
            ).fetchone()
            self.con.execute(
                """INSERT INTO raw.customs_loads VALUES
                ($load_id, $seq, $rel, $sha, $size, $flow, $encoding, $lang, $currency, $dims, $period_source,
                 $start, $end, $rows, $conversions, $warnings, $run_id, $loaded_at)""",
                {"load_id": load_id, "seq": load_seq, "rel": rel, "sha": sha, "size": lf.path.stat().st_size,
                 "flow": flow, "encoding": shape.encoding, "lang": header.language, "currency": header.currency,
                 "dims": ",".join(dims), "period_source": period_source, "start": period_start, "end": period_end,
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
            f"line {shape.lines} (row {shape.lines - 1}), {self._col(names, last)}: the file ends mid-row, without a "
            f"line break after the last value {value!r}, which may be cut short: "
            "the download was probably truncated; download it again"
        )

    def _drop_empty_rows(self, columns: list[str]) -> int:
        """Rows whose every field is blank (a spreadsheet's trailing ',,,,' lines) carry nothing: drop them."""
        blank = " AND ".join(f"coalesce(trim({c}), '') = ''" for c in columns)
        return self.con.execute(f"DELETE FROM _stage WHERE {blank}").fetchone()[0]

    # -- validation steps ----------------------------------------------------------------
    def _validate_codes(self, header: fmt.Header, names: dict[str, str]) -> None:
        self._reject_rows("NOT regexp_full_match(coalesce(trim(hs8), ''), '[0-9]{8}')", "hs8", names,
                          "commodity codes must be 8 digits, kept as text (a spreadsheet may have dropped a leading zero)")
        self._reject_rows("NOT regexp_full_match(coalesce(trim(partner_code), ''), '[0-9]{1,3}')", "partner_code", names,
                          "trading partner codes must be GACC numeric codes (1-3 digits)")
        for dim in ("regime_code", "province_code"):
            if header.has(dim):
                self._reject_rows(f"NOT regexp_full_match(coalesce(trim({dim}), ''), '[0-9A-Za-z]{{1,6}}')", dim, names,
                                  "codes must be short alphanumeric GACC codes")

    def _period(self, header: fmt.Header, names: dict[str, str], lf: LandingFile) -> tuple[str, str | None]:
        """Build _period(row_number, period_start, period_end): a month, or a range for cumulative figures."""
        current_month = self.today.replace(day=1)
        if header.has("period"):
            self.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _period AS
                WITH parts AS (
                    SELECT row_number, period AS text,
                           regexp_extract(trim(coalesce(period, '')), '{fmt.PERIOD_VALUE_RE}', ['y1', 'm1', 'y2', 'm2']) AS p
                    FROM _stage
                ), numbers AS (
                    SELECT row_number, text,
                           TRY_CAST(nullif(p.y1, '') AS INT) AS y1, TRY_CAST(nullif(p.m1, '') AS INT) AS m1,
                           TRY_CAST(coalesce(nullif(p.y2, ''), nullif(p.y1, '')) AS INT) AS y2,
                           TRY_CAST(coalesce(nullif(p.m2, ''), nullif(p.m1, '')) AS INT) AS m2
                    FROM parts
                ), checked AS (
                    SELECT *, coalesce(y1 BETWEEN 1990 AND 2100 AND m1 BETWEEN 1 AND 12
                                       AND y2 BETWEEN 1990 AND 2100 AND m2 BETWEEN 1 AND 12
                                       AND y2 * 12 + m2 >= y1 * 12 + m1, false) AS valid
                    FROM numbers
                )
                SELECT row_number, text, valid,
                       CASE WHEN valid THEN make_date(y1, m1, 1) END AS period_start,
                       CASE WHEN valid THEN make_date(y2, m2, 1) END AS period_end
                FROM checked"""
            )
            self._reject_rows(
                "NOT valid", "period", names,
                "the period must be a month written YYYYMM (e.g. 202506), or a range YYYYMM-YYYYMM for a cumulative "
                "figure (e.g. 202501-202502 for January and February published together)",
                shown_sql="text", table="_period",
            )
            self._reject_rows(
                f"period_end >= DATE '{current_month}'", "period", names,
                f"period in the future or not over yet: statistics for a month exist only after it ends (today is {self.today})",
                shown_sql="text", table="_period",
            )
            warning = None
            in_name = _period_from_name(lf.path.name)
            if in_name is not None:
                outside = self.con.execute(
                    "SELECT count(*) FROM _period WHERE period_start < $a OR period_end > $b",
                    {"a": in_name[0], "b": in_name[1]},
                ).fetchone()[0]
                if outside:
                    warning = period_name_warning(outside, names["period"], in_name)
            return "column", warning
        found = _period_from_name(lf.path.name)
        if found is None:
            raise Rejected(
                "no period: the file has no 数据年月 / Date of data column and its name holds no period. "
                "Name single-month downloads YYYYMM (e.g. exports/202506_magnets.csv) and cumulative downloads "
                "YYYYMM-YYYYMM (e.g. exports/202501-202506_magnets.csv)"
            )
        start, end = found
        if end >= current_month:
            raise Rejected(f"file name: period {end:%Y-%m} is in the future or not over yet (today is {self.today})")
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE _period AS "
            f"SELECT row_number, DATE '{start}' AS period_start, DATE '{end}' AS period_end FROM _stage"
        )
        return "file name", None

    def _validate_numbers(self, header: fmt.Header, names: dict[str, str]) -> None:
        for column in ("quantity", "quantity2", "value_usd", "value_cny"):
            if not header.has(column):
                continue
            self._reject_rows(f"gacc_clean({column}) IS NOT NULL AND gacc_number({column}) IS NULL", column, names,
                              "not a number")
            self._reject_rows(f"gacc_number({column}) < 0", column, names, "negative numbers are not valid trade figures")

    def _resolve_units(self, header: fmt.Header, names: dict[str, str]) -> str | None:
        self.con.execute(
            """CREATE OR REPLACE TEMP TABLE _stage_units AS
            SELECT s.row_number,
                   gacc_text(s.unit) AS unit_text,
                   a.unit_code,
                   coalesce(c.declared_unit_code, a.unit_code) AS declared_unit_code,
                   c.hs8 IS NULL AS unknown_code,
                   CASE WHEN a.unit_code = coalesce(c.declared_unit_code, a.unit_code) THEN CAST(1 AS DECIMAL(38, 6))
                        WHEN fu.base_unit_code = du.base_unit_code THEN CAST(fu.to_base_factor / du.to_base_factor AS DECIMAL(38, 6))
                   END AS unit_factor,
                   fu.unit_name_zh AS file_unit_zh, du.unit_name_zh AS declared_unit_zh, du.unit_name_en AS declared_unit_en,
                   trim(s.hs8) AS hs8, gacc_number(s.quantity) AS quantity
            FROM _stage s
            LEFT JOIN _unit_alias a ON a.alias = lower(gacc_text(s.unit))
            LEFT JOIN _commodity c ON c.hs8 = trim(s.hs8)
            LEFT JOIN _unit fu ON fu.unit_code = a.unit_code
            LEFT JOIN _unit du ON du.unit_code = coalesce(c.declared_unit_code, a.unit_code)"""
        )
        col = self._col(names, "unit")
        missing = self.con.execute(
            "SELECT row_number FROM _stage_units WHERE unit_text IS NULL AND quantity IS NOT NULL ORDER BY 1 LIMIT 3"
        ).fetchall()
        if missing:
            raise Rejected(f"{col}: a quantity without a unit — " + "; ".join(f"row {r} (line {r + 1})" for (r,) in missing))
        unknown = self.con.execute(
            "SELECT row_number, unit_text FROM _stage_units WHERE unit_text IS NOT NULL AND unit_code IS NULL ORDER BY 1 LIMIT 3"
        ).fetchall()
        if unknown:
            shown = "; ".join(f"row {r} (line {r + 1}): {u!r}" for r, u in unknown)
            raise Rejected(f"{col}: unknown unit — {shown}; see dbt/seeds/gacc_unit_aliases.csv for the units we read")
        inconvertible = self.con.execute(
            """SELECT row_number, unit_text, hs8, declared_unit_zh, declared_unit_en FROM _stage_units
               WHERE unit_code IS NOT NULL AND unit_factor IS NULL ORDER BY 1 LIMIT 3"""
        ).fetchall()
        if inconvertible:
            r, unit, hs8, dzh, den = inconvertible[0]
            raise Rejected(
                f"row {r} (line {r + 1}), {col}: unit {unit!r} cannot be converted to {dzh} ({den}), "
                f"the declared first unit of commodity {hs8}"
            )
        conversions = self.con.execute(
            """SELECT file_unit_zh, declared_unit_zh, unit_factor, count(*) FROM _stage_units
               WHERE unit_factor <> 1 GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
        return unit_conversions_text(conversions)

    def _validate_keys(self, header: fmt.Header, names: dict[str, str]) -> None:
        key = [("p.period_start", None), ("p.period_end", None), ("trim(s.hs8)", "hs8"),
               ("lpad(trim(s.partner_code), 3, '0')", "partner_code")]
        key += [(f"trim(s.{c})", c) for c in ("regime_code", "province_code") if header.has(c)]
        dupes = self.con.execute(
            f"""SELECT list(s.row_number ORDER BY s.row_number), {', '.join(k for k, _ in key)}
                FROM _stage s JOIN _period p USING (row_number)
                GROUP BY ALL HAVING count(*) > 1 ORDER BY 1 LIMIT 3"""
        ).fetchall()
        if dupes:
            rows, start, end, *values = dupes[0]
            period = f"{start:%Y%m}" + (f"-{end:%Y%m}" if end != start else "")
            period_name = names.get("period", "period (from the file name)")
            cols = ", ".join(f"'{n}'" for n in [period_name] + [names[c] for _, c in key[2:]])
            raise Rejected(
                f"duplicate key: rows {', '.join(map(str, rows))} (lines {', '.join(str(r + 1) for r in rows)}) repeat "
                f"({cols}) = ({', '.join([period] + [str(v) for v in values])}); a download has one row per key"
                + (f" ({len(dupes)}+ keys repeat)" if len(dupes) > 1 else "")
            )


# --------------------------------------------------------------------------- the landing dir


class _Loaded:
    """What raw.customs_loads already holds, to tell new files and releases from repeats."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.latest_sha: dict[str, str] = {}  # path -> content of its latest load
        self.by_sha: dict[str, list[tuple[str, str, dt.date, dt.date]]] = {}  # content -> (path, period source, start, end)
        self.times: dict[tuple[str, str], int] = {}  # (path, content) -> loads
        for row in con.execute(
            "SELECT file_path, file_sha256, period_source, period_start, period_end FROM raw.customs_loads ORDER BY load_seq"
        ).fetchall():
            self.add(*row)

    def add(self, path: str, sha: str, source: str | None, start: dt.date | None, end: dt.date | None) -> None:
        self.latest_sha[path] = sha
        self.by_sha.setdefault(sha, []).append((path, source, start, end))
        self.times[(path, sha)] = self.times.get((path, sha), 0) + 1

    def same_download(self, lf: LandingFile, sha: str) -> str | None:
        """The path this very download was loaded from, or None when the file is new or a new release.

        A path is read again whenever its content differs from its latest load, even if it goes
        back to an earlier version: the landing directory says what the latest release is. The
        same bytes under another name are the same download, unless the period came from the file
        name: two months can have byte-identical downloads, and then the name is part of the data.
        """
        if lf.rel in self.latest_sha:
            return lf.rel if self.latest_sha[lf.rel] == sha else None
        for path, source, start, end in self.by_sha.get(sha, []):
            if source != "file name" or _period_from_name(lf.path.name) == (start, end):
                return path
        return None


class _LandingHashes:
    """Each landing file's SHA-256, read again only when the file changed.

    A national landing directory is thousands of files (6 GB at the full size): hashing every
    one on every build took 5 s at 10 years of history, and grows with it. A hash is reused
    while the file has the size, modification time, change time and inode it was computed
    for. The change time moves on any write, rename or `touch`, even when a tool puts the
    modification time back (`cp -p`, `rsync -t`). A file stat'ed within two seconds of its
    last change is not remembered: a write in the same clock tick could leave every time as
    it was.
    """

    RACY_NS = 2_000_000_000

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.known = {
            path: (key, sha) for path, *key, sha in con.execute(
                "SELECT file_path, size_bytes, mtime_ns, ctime_ns, inode, file_sha256 FROM raw.landing_file_hashes"
            ).fetchall()
        }
        self.fresh: dict[str, tuple] = {}  # path -> (size, mtime, ctime, inode, sha) to remember
        self.outdated: list[str] = []  # remembered for a status the file no longer has
        self.hashed = 0  # files read this build

    def sha256(self, lf: LandingFile) -> str:
        now = time.time_ns()
        st = lf.path.stat()
        key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        cached = self.known.get(lf.rel)
        if cached is not None and list(cached[0]) == key:
            return cached[1]
        sha = sha256_of(lf.path)
        self.hashed += 1
        if cached is not None:
            self.outdated.append(lf.rel)
        if now - max(st.st_mtime_ns, st.st_ctime_ns) >= self.RACY_NS:
            self.fresh[lf.rel] = (*key, sha)
        return sha

    def save(self, con: duckdb.DuckDBPyConnection, present: set[str] | None) -> None:
        """Remember the new hashes; with `present` (a whole-directory scan), forget files gone since."""
        gone = [] if present is None else [p for p in self.known if p not in present]
        changed = list(self.fresh.items())
        if not changed and not gone and not self.outdated:
            return
        columns = list(zip(*[(path, *entry) for path, entry in changed])) if changed else [[]] * 6
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM raw.landing_file_hashes WHERE list_contains($paths, file_path)",
                        {"paths": [path for path, _ in changed] + gone + self.outdated})
            if changed:
                con.execute(
                    """INSERT INTO raw.landing_file_hashes
                       SELECT unnest($p), unnest($s), unnest($m), unnest($c), unnest($i), unnest($h), $t""",
                    {"p": list(columns[0]), "s": list(columns[1]), "m": list(columns[2]), "c": list(columns[3]),
                     "i": list(columns[4]), "h": list(columns[5]),
                     "t": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)},
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


# A GACC download stops at 10,000 rows (about 2 MB); anything this large is not one.
MAX_FILE_BYTES = int(os.environ.get("CUSTOMS_MAX_FILE_BYTES", str(512 * 1024 * 1024)))


def refuse_before_reading(lf: LandingFile, landing_dir: Path) -> str | None:
    """Reasons to refuse a file without reading a byte of it (not even to hash it)."""
    if lf.path.is_symlink():
        target = lf.path.resolve()
        root = landing_dir.resolve()
        if target != root and root not in target.parents:
            return "symbolic link pointing outside the landing directory: not read"
    try:
        size = lf.path.stat().st_size
    except OSError as exc:
        return f"cannot read the file: {exc.strerror}"
    if size > MAX_FILE_BYTES:
        return (f"file of {size / 1e6:,.0f} MB is larger than {MAX_FILE_BYTES / 1e6:,.0f} MB: a GACC download stops at "
                "10,000 rows (about 2 MB); split the data into downloads (or raise CUSTOMS_MAX_FILE_BYTES)")
    return None


def _record_rejection(con, report: IngestReport, recorded: set, rejection: Rejection, run_id: str | None) -> None:
    report.rejected.append(rejection)
    if (rejection.file_path, rejection.file_sha256, rejection.reason) not in recorded:
        con.execute(
            "INSERT INTO audit.rejected_files VALUES ($p, $s, $r, $t, $run)",
            {"p": rejection.file_path, "s": rejection.file_sha256, "r": rejection.reason,
             "t": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), "run": run_id},
        )
        recorded.add((rejection.file_path, rejection.file_sha256, rejection.reason))


def ingest_landing(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    staging_dir: Path,
    run_id: str | None = None,
    only: list[str] | None = None,
    today: dt.date | None = None,
    seeds_dir: Path = SEEDS_DIR,
    batch: bool | None = None,
) -> IngestReport:
    """Load every new or changed file; skip what is already loaded; record what cannot be read.

    `batch` (default on; CUSTOMS_INGEST_BATCH=0 turns it off) validates and loads clean files
    many per statement (lib/ingest_batch.py); off, every file goes through the per-file gate.
    Both give the same rows, loads and rejections.
    """
    from dagster_project.lib.ingest.batch import BATCH_FILES, BatchLoader, Candidate

    if batch is None:
        batch = os.environ.get("CUSTOMS_INGEST_BATCH", "1") != "0"
    report = IngestReport()
    references_loaded = False
    loader = FileLoader(con, staging_dir, today or dt.date.today(), run_id)
    batcher = BatchLoader(con, loader, staging_dir, loader.today, run_id)
    loaded = _Loaded(con)
    hashes = _LandingHashes(con)
    recorded_rejections = {
        (r[0], r[1], r[2]) for r in con.execute("SELECT file_path, file_sha256, reason FROM audit.rejected_files").fetchall()
    }
    pending: list[Candidate] = []
    # Batches on their way in, oldest first, each with its transcoding running in a thread: while
    # DuckDB loads one batch, the next one is transcoded (DuckDB releases the GIL as it executes).
    queued: deque[tuple[list[Candidate], Future | None]] = deque()
    transcoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-transcode") if batch else None

    def queue_pending() -> None:
        if pending:
            files = list(pending)
            pending.clear()
            queued.append((files, transcoder.submit(batcher.prepare, files) if transcoder else None))

    def load_oldest() -> None:
        nonlocal references_loaded
        files, preparing = queued.popleft()
        if not references_loaded:  # only when there is something to load: a run with nothing new stays cheap
            load_reference_tables(con, seeds_dir)
            references_loaded = True
        try:
            ready = preparing.result() if preparing else None
            outcomes = list(batcher.load(files, batched=batch, ready=ready))
        finally:
            batcher.discard_staged(files)  # BatchLoader.load does too, unless it failed before starting
        for c, outcome in outcomes:
            if isinstance(outcome, LoadResult):
                loaded.add(c.lf.rel, c.sha, outcome.period_source, outcome.period_start, outcome.period_end)
                report.loaded.append(outcome)
                report.batched += c.clean
                continue
            if isinstance(outcome, (duckdb.Error, OSError, UnicodeError, csv.Error)):
                # a file we cannot read must not stop the others from loading
                first = str(outcome).strip().splitlines()[0] if str(outcome).strip() else type(outcome).__name__
                outcome = Rejected(f"could not be read ({type(outcome).__name__}): {first[:300]}")
            if not isinstance(outcome, Rejected):
                raise outcome
            _record_rejection(con, report, recorded_rejections, Rejection(c.lf.rel, c.sha, str(outcome)), run_id)

    def flush() -> None:
        queue_pending()
        while queued:
            load_oldest()

    wanted = set(only) if only is not None else None
    present: set[str] = set()
    try:
        for lf in discover(landing_dir):
            present.add(lf.rel)
            if wanted is not None and lf.rel not in wanted:
                continue
            refusal = refuse_before_reading(lf, landing_dir)
            if refusal is not None:
                _record_rejection(con, report, recorded_rejections, Rejection(lf.rel, None, refusal), run_id)
                continue
            try:
                sha = hashes.sha256(lf)
            except OSError as exc:
                report.rejected.append(Rejection(lf.rel, None, f"cannot read the file: {exc.strerror}"))
                continue
            if any(c.sha == sha for c in pending) or any(c.sha == sha for files, _ in queued for c in files):
                flush()  # whether this is a repeat depends on how the earlier copy loads
            same = loaded.same_download(lf, sha)
            if same is not None:
                report.skipped.append(lf.rel)
                if same != lf.rel:
                    report.duplicate_of[lf.rel] = same
                continue
            generation = loaded.times.get((lf.rel, sha), 0)
            pending.append(Candidate(lf, sha, generation, load_id_for(lf.rel, sha, generation)))
            if len(pending) >= BATCH_FILES:
                queue_pending()
                while len(queued) > 1:  # keep one batch transcoding while the one before it loads
                    load_oldest()
        flush()
        hashes.save(con, present if wanted is None else None)
        report.hashed = hashes.hashed
    finally:
        # a failure part-way: nothing of the batches not loaded stays in the staging folder
        for files, preparing in queued:
            if preparing is not None:
                wait([preparing])
            batcher.discard_staged(files)
        if transcoder is not None:
            transcoder.shutdown(wait=True)
    for table in ("_stage", "_stage_units", "_period"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return report
