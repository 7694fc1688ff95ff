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
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from . import gacc_format as fmt
from .settings import SEEDS_DIR
from .transcode import EncodingError, sha256_of, transcode_to_utf8

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


@dataclass
class Rejection:
    file_path: str
    file_sha256: str | None
    reason: str


@dataclass
class IngestReport:
    loaded: list[LoadResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

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


def load_id_for(rel: str, sha: str) -> str:
    return hashlib.sha256(f"{rel}\x00{sha}".encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- reference data

_MACROS_SQL = """
CREATE OR REPLACE TEMP MACRO gacc_clean(x) AS
    CASE WHEN x IS NULL OR trim(x) IN ({null_tokens}) THEN NULL
         ELSE replace(replace(replace(replace(trim(x), ',', ''), '，', ''), ' ', ''), '{nbsp}', '') END;
CREATE OR REPLACE TEMP MACRO gacc_number(x) AS TRY_CAST(gacc_clean(x) AS DECIMAL(38, 4));
"""

_REFERENCE_TABLES = {
    "_unit_alias": ("gacc_unit_aliases.csv", "SELECT DISTINCT lower(trim(alias)) AS alias, unit_code"),
    "_unit": ("gacc_units.csv", "SELECT unit_code, unit_name_zh, unit_name_en, base_unit_code, "
                                "CAST(to_base_factor AS DECIMAL(38, 6)) AS to_base_factor"),
    "_commodity": ("gacc_commodities.csv", "SELECT hs8, unit1_code AS declared_unit_code"),
    "_partner": ("gacc_partners.csv", "SELECT partner_code"),
}


def load_reference_tables(con: duckdb.DuckDBPyConnection, seeds_dir: Path = SEEDS_DIR) -> None:
    """The unit, commodity and partner lists the gate checks against (the same CSVs dbt seeds)."""
    null_tokens = ", ".join("'" + t.replace("'", "''") + "'" for t in fmt.NULL_TOKENS)
    con.execute(_MACROS_SQL.replace("{null_tokens}", null_tokens).replace("{nbsp}", "\u00a0"))
    for table, (filename, select) in _REFERENCE_TABLES.items():
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS {select} FROM read_csv($path, header=true, all_varchar=true)",
            {"path": str(seeds_dir / filename)},
        )


# --------------------------------------------------------------------------- one file


def _first_line(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8", newline="") as handle:
        line = handle.readline()
        if not line.strip():
            return []
        return next(csv.reader([line]))


def _has_data_after_header(path: Path) -> bool:
    with path.open("r", encoding="utf-8", newline="") as handle:
        handle.readline()
        for line in handle:
            if line.strip().strip(","):
                return True
    return False


def _period_from_name(name: str) -> tuple[dt.date, dt.date] | None:
    match = fmt.PERIOD_IN_NAME.search(name)
    if not match:
        return None
    start = _yyyymm(match.group(1))
    end = _yyyymm(match.group(2)) if match.group(2) else start
    if start is None or end is None or end < start:
        return None
    return start, end


def _yyyymm(text: str) -> dt.date | None:
    year, month = int(text[:4]), int(text[4:])
    if not (1990 <= year <= 2100 and 1 <= month <= 12):
        return None
    return dt.date(year, month, 1)


def _duckdb_line(message: str) -> str:
    match = re.search(r"[Ll]ine:? (\d+)", message)
    return f"line {match.group(1)}: " if match else ""


def _first_sentence(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else message
    return first.replace("Invalid Input Error: ", "").replace("Conversion Error: ", "")


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

    def _first_bad(self, where: str, limit: int = 3) -> list[tuple]:
        return self.con.execute(f"SELECT row_number, * EXCLUDE (row_number) FROM _stage WHERE {where} ORDER BY row_number LIMIT {limit}").fetchall()

    def _reject_rows(self, where: str, column: str, header_names: dict[str, str], what: str) -> None:
        rows = self.con.execute(
            f"SELECT row_number, {column} FROM _stage WHERE {where} ORDER BY row_number LIMIT 3"
        ).fetchall()
        if not rows:
            return
        total = self.con.execute(f"SELECT count(*) FROM _stage WHERE {where}").fetchone()[0]
        shown = "; ".join(f"row {r} (line {r + 1}): {v!r}" for r, v in rows)
        more = f" and {total - len(rows)} more row(s)" if total > len(rows) else ""
        raise Rejected(f"{self._col(header_names, column)}: {what} — {shown}{more}")

    # -- the load ------------------------------------------------------------------------
    def load(self, lf: LandingFile, landing_dir: Path, sha: str) -> LoadResult:
        rel = lf.rel
        parts = rel.split("/")
        if len(parts) < 2 or parts[0] not in FLOWS:
            raise Rejected(
                "file is not inside a flow folder: put exports under exports/ and imports under imports/ "
                "(GACC files do not say which flow they hold)"
            )
        flow = parts[0]
        if lf.path.is_symlink():
            target = lf.path.resolve()
            if landing_dir.resolve() not in target.parents:
                raise Rejected("symbolic link pointing outside the landing directory: not read")
        if lf.path.suffix.lower() not in TEXT_SUFFIXES:
            raise Rejected(
                f"not a CSV file (suffix '{lf.path.suffix}'): download the query as CSV from the GACC platform"
            )
        if lf.path.stat().st_size == 0:
            raise Rejected("empty file (0 bytes): the download failed; download it again")

        load_id = load_id_for(rel, sha)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        staged = self.staging_dir / f"{load_id}.csv"
        try:
            try:
                encoding = transcode_to_utf8(lf.path, staged).encoding
            except EncodingError as exc:
                raise Rejected(f"encoding: {exc}") from None
            return self._load_staged(lf, rel, flow, sha, load_id, staged, encoding)
        finally:
            staged.unlink(missing_ok=True)

    def _load_staged(self, lf, rel, flow, sha, load_id, staged: Path, encoding: str) -> LoadResult:
        raw_header = _first_line(staged)
        if not raw_header:
            raise Rejected("empty file: no header row")
        try:
            header = fmt.map_header(raw_header)
        except fmt.HeaderError as exc:
            raise Rejected(f"line 1 {exc}") from None
        if not _has_data_after_header(staged):
            raise Rejected("header only, no data rows: the query returned nothing; nothing to load")

        header_names = {canonical: raw_header[i].strip().lstrip("\ufeff") for i, canonical in enumerate(header.columns)}
        columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in header.columns) + "}"
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
            message = str(exc)
            raise Rejected(
                f"{_duckdb_line(message)}not a well-formed GACC CSV (truncated download or a row with the wrong "
                f"number of fields?): {_first_sentence(message)[:300]}"
            ) from None

        row_count = self.con.execute("SELECT count(*) FROM _stage").fetchone()[0]
        self._validate_codes(header, header_names)
        period_sql, period_source, cumulative = self._period(header, header_names, lf)
        self._validate_numbers(header, header_names)
        unit_conversions = self._resolve_units(header, header_names)
        self._validate_keys(header, header_names, period_sql)

        warnings = []
        if row_count == fmt.PLATFORM_ROW_CAP:
            warnings.append(
                f"exactly {fmt.PLATFORM_ROW_CAP:,} data rows: the GACC platform stops downloads at this limit, "
                "so this download was probably truncated; split the query (by month, partner or chapter) and download again"
            )
        unknown_partners = self.con.execute(
            "SELECT count(*) FROM _stage s ANTI JOIN _partner p ON p.partner_code = lpad(trim(s.partner_code), 3, '0')"
        ).fetchone()[0]
        if unknown_partners:
            warnings.append(f"{unknown_partners} row(s) with partner codes not in the GACC partner list")

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
                       p.period_start, p.period_end, $cumulative,
                       trim(s.hs8), {opt('commodity_name')},
                       lpad(trim(s.partner_code), 3, '0'), {opt('partner_name')},
                       {opt('regime_code')}, {opt('regime_name')},
                       {opt('province_code')}, {opt('province_name')},
                       gacc_number(s.quantity), nullif(trim(s.unit), ''), u.unit_code, u.declared_unit_code, u.unit_factor,
                       {'gacc_number(s.quantity2)' if header.has('quantity2') else 'NULL'},
                       {"gacc_clean(s.unit2)" if header.has('unit2') else 'NULL'},
                       gacc_number(s.{value_col})
                FROM _stage s
                JOIN ({period_sql}) p USING (row_number)
                JOIN _stage_units u USING (row_number)
                ORDER BY s.row_number""",
                {"load_id": load_id, "rel": rel, "sha": sha, "loaded_at": loaded_at, "flow": flow,
                 "currency": header.currency, "cumulative": cumulative},
            )
            period_start, period_end = self.con.execute(
                "SELECT min(period_start), max(period_end) FROM raw.customs_rows WHERE load_id = $id", {"id": load_id}
            ).fetchone()
            self.con.execute(
                """INSERT INTO raw.customs_loads VALUES
                ($load_id, $seq, $rel, $sha, $size, $flow, $encoding, $lang, $currency, $dims, $period_source,
                 $start, $end, $rows, $conversions, $warnings, $run_id, $loaded_at)""",
                {"load_id": load_id, "seq": load_seq, "rel": rel, "sha": sha, "size": lf.path.stat().st_size,
                 "flow": flow, "encoding": encoding, "lang": header.language, "currency": header.currency,
                 "dims": ",".join(dims), "period_source": period_source, "start": period_start, "end": period_end,
                 "rows": row_count, "conversions": unit_conversions, "warnings": "; ".join(warnings) or None,
                 "run_id": self.run_id, "loaded_at": loaded_at},
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return LoadResult(rel, load_id, row_count, warnings)

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

    def _period(self, header: fmt.Header, names: dict[str, str], lf: LandingFile) -> tuple[str, str, bool]:
        current_month = self.today.replace(day=1)
        if header.has("period"):
            parsed = (
                "CASE WHEN regexp_full_match(trim(period), '[0-9]{6}') "
                "THEN make_date(CAST(substr(trim(period), 1, 4) AS INT), CAST(substr(trim(period), 5, 2) AS INT), 1) "
                "WHEN regexp_full_match(trim(period), '[0-9]{4}[-/.年][0-9]{1,2}月?') "
                "THEN make_date(CAST(substr(trim(period), 1, 4) AS INT), "
                "CAST(regexp_extract(trim(period), '[0-9]{4}[-/.年]([0-9]{1,2})', 1) AS INT), 1) END"
            )
            bad_month = (
                "NOT (regexp_full_match(coalesce(trim(period), ''), '[0-9]{4}[-/.年]?[0-9]{1,2}月?') "
                "AND TRY_CAST(regexp_extract(trim(period), '^[0-9]{4}[-/.年]?([0-9]{1,2})', 1) AS INT) BETWEEN 1 AND 12 "
                "AND TRY_CAST(substr(trim(period), 1, 4) AS INT) BETWEEN 1990 AND 2100)"
            )
            self._reject_rows(bad_month, "period", names, "the period must be a month written YYYYMM (e.g. 202506)")
            self._reject_rows(f"({parsed}) >= DATE '{current_month}'", "period", names,
                              f"period in the future: statistics for a month exist only after it ends (today is {self.today})")
            return f"SELECT row_number, {parsed} AS period_start, {parsed} AS period_end FROM _stage", "column", False
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
        return (
            f"SELECT row_number, DATE '{start}' AS period_start, DATE '{end}' AS period_end FROM _stage",
            "file name",
            start != end,
        )

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
                   gacc_clean(s.unit) AS unit_text,
                   a.unit_code,
                   coalesce(c.declared_unit_code, a.unit_code) AS declared_unit_code,
                   c.hs8 IS NULL AS unknown_code,
                   CASE WHEN a.unit_code = coalesce(c.declared_unit_code, a.unit_code) THEN CAST(1 AS DECIMAL(38, 6))
                        WHEN fu.base_unit_code = du.base_unit_code THEN CAST(fu.to_base_factor / du.to_base_factor AS DECIMAL(38, 6))
                   END AS unit_factor,
                   fu.unit_name_zh AS file_unit_zh, du.unit_name_zh AS declared_unit_zh, du.unit_name_en AS declared_unit_en,
                   trim(s.hs8) AS hs8, gacc_number(s.quantity) AS quantity
            FROM _stage s
            LEFT JOIN _unit_alias a ON a.alias = lower(gacc_clean(s.unit))
            LEFT JOIN _commodity c ON c.hs8 = trim(s.hs8)
            LEFT JOIN _unit fu ON fu.unit_code = a.unit_code
            LEFT JOIN _unit du ON du.unit_code = coalesce(c.declared_unit_code, a.unit_code)"""
        )
        col = self._col(names, "unit")
        missing = self.con.execute(
            "SELECT row_number FROM _stage_units WHERE unit_text IS NULL AND quantity IS NOT NULL ORDER BY 1 LIMIT 3"
        ).fetchall()
        if missing:
            raise Rejected(f"{col}: a quantity without a unit — rows " + ", ".join(str(r[0]) for r in missing))
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
        if not conversions:
            return None
        return "; ".join(f"{n} row(s) converted {a} -> {b} (x{f.normalize()})" for a, b, f, n in conversions)

    def _validate_keys(self, header: fmt.Header, names: dict[str, str], period_sql: str) -> None:
        key = ["p.period_start", "trim(s.hs8)", "lpad(trim(s.partner_code), 3, '0')"]
        key += [f"trim(s.{c})" for c in ("regime_code", "province_code") if header.has(c)]
        dupes = self.con.execute(
            f"""SELECT list(s.row_number ORDER BY s.row_number), {', '.join(key)}
                FROM _stage s JOIN ({period_sql}) p USING (row_number)
                GROUP BY ALL HAVING count(*) > 1 ORDER BY 1 LIMIT 3"""
        ).fetchall()
        if dupes:
            rows, *values = dupes[0]
            cols = ", ".join(names[c] for c in ("period", "hs8", "partner_code", "regime_code", "province_code") if c in names)
            raise Rejected(
                f"duplicate key: rows {', '.join(map(str, rows))} repeat ({cols}) = "
                f"({', '.join(str(v) for v in values)}); a download has one row per key"
                + (f" ({len(dupes)}+ keys repeat)" if len(dupes) > 1 else "")
            )


# --------------------------------------------------------------------------- the landing dir


def ingest_landing(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    staging_dir: Path,
    run_id: str | None = None,
    only: list[str] | None = None,
    today: dt.date | None = None,
    seeds_dir: Path = SEEDS_DIR,
) -> IngestReport:
    """Load every new or changed file; skip what is already loaded; record what cannot be read."""
    report = IngestReport()
    load_reference_tables(con, seeds_dir)
    loader = FileLoader(con, staging_dir, today or dt.date.today(), run_id)
    known = {(r[0], r[1]) for r in con.execute("SELECT file_path, file_sha256 FROM raw.customs_loads").fetchall()}
    known_shas = {sha: path for path, sha in known}
    recorded_rejections = {
        (r[0], r[1], r[2]) for r in con.execute("SELECT file_path, file_sha256, reason FROM audit.rejected_files").fetchall()
    }
    wanted = set(only) if only is not None else None
    for lf in discover(landing_dir):
        if wanted is not None and lf.rel not in wanted:
            continue
        try:
            sha = sha256_of(lf.path)
        except OSError as exc:
            report.rejected.append(Rejection(lf.rel, None, f"cannot read the file: {exc.strerror}"))
            continue
        if (lf.rel, sha) in known or sha in known_shas:
            report.skipped.append(lf.rel)
            continue
        try:
            result = loader.load(lf, landing_dir, sha)
        except Rejected as exc:
            rejection = Rejection(lf.rel, sha, str(exc))
            report.rejected.append(rejection)
            if (lf.rel, sha, rejection.reason) not in recorded_rejections:
                con.execute(
                    "INSERT INTO audit.rejected_files VALUES ($p, $s, $r, $t, $run)",
                    {"p": lf.rel, "s": sha, "r": rejection.reason,
                     "t": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), "run": run_id},
                )
            continue
        known_shas[sha] = lf.rel
        report.loaded.append(result)
    con.execute("DROP TABLE IF EXISTS _stage; DROP TABLE IF EXISTS _stage_units")
    return report
