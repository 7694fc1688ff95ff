"""The per-file gate's checks of a staged download's rows, in SQL over its temp tables.

`_stage` holds the file's rows as text (row_number = line - 1); the checks build `_period`
and `_stage_units` beside it, which the insert reads. A check that fails raises Rejected,
naming the column and the first rows at fault.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from dagster_project.lib.ingest import gacc_format as fmt
from dagster_project.lib.ingest.landing_files import LandingFile, period_from_name
from dagster_project.lib.ingest.load_record import Rejected, period_name_warning, unit_conversions_text
from dagster_project.lib.months import first_of_month


SHOWN_ROWS = 5  # a reason names this many rows at fault and counts the rest
SHOWN_VALUE_CHARS = 60


def column_label(header_names: dict[str, str], canonical: str) -> str:
    """A column as the user's file names it."""
    return f"column '{header_names[canonical]}'"


def shown(value) -> str:
    """A value as a reason quotes it: a 10 MB cell is not copied into the reason."""
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE_CHARS else f"{text[:SHOWN_VALUE_CHARS]}…' ({len(str(value)):,} characters)"


class RowChecks:
    def __init__(self, con: duckdb.DuckDBPyConnection, today: dt.date):
        self.con = con
        self.today = today

    def reject_rows(self, where: str, column: str, header_names: dict[str, str], what: str,
                    shown_sql: str | None = None, table: str = "_stage") -> None:
        """Reject the file if any row matches `where`, naming the first rows (row, line) and the column."""
        rows = self.con.execute(
            f"SELECT row_number, {shown_sql or column} FROM {table} WHERE {where} ORDER BY row_number LIMIT {SHOWN_ROWS}"
        ).fetchall()
        if not rows:
            return
        total = self.con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]
        listed = "; ".join(f"row {r} (line {r + 1}): {shown(v)}" for r, v in rows)
        more = f" and {total - len(rows):,} more row(s)" if total > len(rows) else ""
        raise Rejected(f"{column_label(header_names, column)}: {what} — {listed}{more}")

    def codes(self, header: fmt.Header, names: dict[str, str]) -> None:
        self.reject_rows("NOT regexp_full_match(coalesce(trim(hs8), ''), '[0-9]{8}')", "hs8", names,
                         "commodity codes must be 8 digits, kept as text (a spreadsheet may have dropped a leading zero)")
        if header.has("partner_code"):
            self.reject_rows("NOT regexp_full_match(coalesce(trim(partner_code), ''), '[0-9]{1,3}')", "partner_code", names,
                             "trading partner codes must be GACC numeric codes (1-3 digits)")
        for dim in ("regime_code", "province_code"):
            if header.has(dim):
                self.reject_rows(f"NOT regexp_full_match(coalesce(trim({dim}), ''), '[0-9A-Za-z]{{1,6}}')", dim, names,
                                 "codes must be short alphanumeric GACC codes")

    def period(self, header: fmt.Header, names: dict[str, str], lf: LandingFile) -> tuple[str, str | None]:
        """Build _period(row_number, period_start, period_end): a month, or a range for cumulative figures."""
        current_month = first_of_month(self.today)
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
            self.reject_rows(
                "NOT valid", "period", names,
                "the period must be a month written YYYYMM (e.g. 202506), or a range YYYYMM-YYYYMM for a cumulative "
                "figure (e.g. 202501-202502 for January and February published together)",
                shown_sql="text", table="_period",
            )
            self.reject_rows(
                f"period_end >= DATE '{current_month}'", "period", names,
                f"period in the future or not over yet: statistics for a month exist only after it ends (today is {self.today})",
                shown_sql="text", table="_period",
            )
            warning = None
            in_name = period_from_name(lf.path.name)
            if in_name is not None:
                outside = self.con.execute(
                    "SELECT count(*) FROM _period WHERE period_start < $a OR period_end > $b",
                    {"a": in_name[0], "b": in_name[1]},
                ).fetchone()[0]
                if outside:
                    warning = period_name_warning(outside, names["period"], in_name)
            return "column", warning
        found = period_from_name(lf.path.name)
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

    def numbers(self, header: fmt.Header, names: dict[str, str]) -> None:
        for column in ("quantity", "quantity2", "value_usd", "value_cny"):
            if not header.has(column):
                continue
            self.reject_rows(f"gacc_clean({column}) IS NOT NULL AND gacc_number({column}) IS NULL", column, names,
                             "not a number")
            self.reject_rows(f"gacc_number({column}) < 0", column, names, "negative numbers are not valid trade figures")

    def units(self, header: fmt.Header, names: dict[str, str]) -> str | None:
        """Build _stage_units (each row's unit and its factor to the commodity's declared unit);
        return the load record's unit conversions."""
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
        col = column_label(names, "unit")
        missing = self.con.execute(
f"SELECT row_number FROM _stage_units WHERE unit_text IS NULL AND quantity IS NOT NULL ORDER BY 1 LIMIT {SHOWN_ROWS}"
        ).fetchall()
        if missing:
            raise Rejected(f"{col}: a quantity without a unit — " + "; ".join(f"row {r} (line {r + 1})" for (r,) in missing))
        unknown = self.con.execute(
f"SELECT row_number, unit_text FROM _stage_units WHERE unit_text IS NOT NULL AND unit_code IS NULL ORDER BY 1 LIMIT {SHOWN_ROWS}"
        ).fetchall()
        if unknown:
            listed = "; ".join(f"row {r} (line {r + 1}): {shown(u)}" for r, u in unknown)
            raise Rejected(f"{col}: unknown unit — {listed}; see dbt/seeds/gacc_unit_aliases.csv for the units we read")
        inconvertible = self.con.execute(
            """SELECT row_number, unit_text, hs8, declared_unit_zh, declared_unit_en FROM _stage_units
               WHERE unit_code IS NOT NULL AND unit_factor IS NULL ORDER BY 1 LIMIT 3"""
        ).fetchall()
        if inconvertible:
            r, unit, hs8, dzh, den = inconvertible[0]
            raise Rejected(
                f"row {r} (line {r + 1}), {col}: unit {shown(unit)} cannot be converted to {dzh} ({den}), "
                f"the declared first unit of commodity {hs8}"
            )
        conversions = self.con.execute(
            """SELECT file_unit_zh, declared_unit_zh, unit_factor, count(*) FROM _stage_units
               WHERE unit_factor <> 1 GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
        return unit_conversions_text(conversions)

    def keys(self, header: fmt.Header, names: dict[str, str]) -> None:
        """A download has one row per period and key: a repeat is a corrupted file, not two figures."""
        key = [("p.period_start", None), ("p.period_end", None), ("trim(s.hs8)", "hs8")]
        if header.has("partner_code"):
            key.append(("lpad(trim(s.partner_code), 3, '0')", "partner_code"))
        key += [(f"trim(s.{c})", c) for c in ("regime_code", "province_code") if header.has(c)]
        # the first key that repeats (by its first row), its first rows, and how many rows and
        # keys repeat in all: a file of thousands of copies of one row gets a short reason
        dupes = self.con.execute(
            f"""WITH k AS (
                    SELECT list(s.row_number ORDER BY s.row_number)[:{SHOWN_ROWS}] AS rows, count(*) AS n,
                           min(s.row_number) AS first_row, {', '.join(k for k, _ in key)}
                    FROM _stage s JOIN _period p USING (row_number)
                    GROUP BY ALL HAVING count(*) > 1
                )
                SELECT * EXCLUDE (first_row), count(*) OVER () AS keys, sum(n) OVER () AS repeated_rows
                FROM k ORDER BY first_row LIMIT 1"""
        ).fetchall()
        if dupes:
            rows, n, start, end, *values, keys, repeated_rows = dupes[0]
            period = f"{start:%Y%m}" + (f"-{end:%Y%m}" if end != start else "")
            period_name = names.get("period", "period (from the file name)")
            cols = ", ".join(f"'{name}'" for name in [period_name] + [names[c] for _, c in key[2:]])
            more = f" and {n - len(rows):,} more row(s)" if n > len(rows) else ""
            others = (f"; {keys - 1:,} other key(s) repeat too ({repeated_rows - n:,} rows)" if keys > 1 else "")
            raise Rejected(
                f"duplicate key: rows {', '.join(map(str, rows))} (lines {', '.join(str(r + 1) for r in rows)}){more} repeat "
                f"({cols}) = ({', '.join([period] + [shown(v) if len(str(v)) > SHOWN_VALUE_CHARS else str(v) for v in values])})"
                f"{others}; a download has one row per key"
            )
