"""Load many clean downloads per DuckDB statement; leave every doubtful file to the per-file gate.

A national download is thousands of 10,000-row files. Validating them one by one costs about
fifteen statements per file, so this path reads a batch of files with one `read_csv` over a
list of paths, derives every row's period, unit and numbers once, and asks one aggregate
query per batch whether each file is clean. A clean file is inserted with the others of its
run in one statement and one transaction.

The batch path never rejects anything: a file it has the least doubt about (a parse error in
the batch, blank lines, a bad code, an unknown unit, a duplicate key, a row count that does
not match its lines ...) goes to `FileLoader.load`, the per-file gate, which finds the row and
column at fault and says so. Both paths write the same rows and the same load record
(tests/test_ingest_batch.py compares them on every file of the corpus).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.lib.ingest import gacc_format as fmt
from dagster_project.lib.ingest.landing_files import TEXT_SUFFIXES, LandingFile, in_flow_folder, period_from_name
from dagster_project.lib.ingest.load_record import LoadResult, load_warnings, period_name_warning, unit_conversions_text
from dagster_project.lib.ingest.reference_data import NULL_TOKENS_SQL
from dagster_project.lib.ingest.settling import change_since_listed
from dagster_project.lib.ingest.staged_csv import READ_CSV_OPTIONS, columns_spec, first_line, header_name, stage_columns
from dagster_project.lib.ingest.transcode import EncodingError, Transcoded, transcode_to_utf8
from dagster_project.lib.months import first_of_month

# Files per read_csv: about 1M rows at the platform's 10,000-row cap, a few hundred MB in DuckDB.
BATCH_FILES = int(os.environ.get("CUSTOMS_INGEST_BATCH_FILES", "100"))


@dataclass
class Candidate:
    """A new or changed landing file on its way in."""

    lf: LandingFile
    sha: str
    generation: int
    load_id: str
    shape: Transcoded | None = None
    header: fmt.Header | None = None
    stage_columns: tuple[str, ...] = ()
    name_period: tuple[dt.date, dt.date] | None = None
    period_header: str | None = None  # the period column's name as written in the file
    clean: bool = False
    stats: dict = field(default_factory=dict)


def _prepare(c: Candidate, staging_dir: Path, today: dt.date) -> bool:
    """Transcode and look at the header; False sends the file to the per-file gate."""
    if not in_flow_folder(c.lf.rel) or c.lf.path.suffix.lower() not in TEXT_SUFFIXES:
        return False
    if c.lf.stat is None or c.lf.stat.st_size == 0:
        return False
    try:
        staged = staging_dir / f"{c.load_id}.csv"
        c.shape = transcode_to_utf8(c.lf.path, staged)
    except (EncodingError, OSError, UnicodeError):
        return False
    shape = c.shape
    if shape.blank_lines or not shape.ends_with_line_break or shape.last_content_line < 2:
        return False
    try:
        raw_header = first_line(shape.path)
        c.header = fmt.map_header(raw_header) if raw_header else None
    except (fmt.HeaderError, UnicodeError, ValueError):
        return False
    if c.header is None:
        return False
    c.stage_columns = stage_columns(c.header, raw_header)
    if c.header.has("period"):
        c.period_header = header_name(raw_header[c.header.columns.index("period")])
    c.name_period = period_from_name(c.lf.path.name)
    if not c.header.has("period"):
        if c.name_period is None or c.name_period[1] >= first_of_month(today):
            return False
    return True


def stage_sql(columns: tuple[str, ...]) -> str:
    """A batch of files with these columns, read as text into _bstage ($paths: the files)."""
    return f"""CREATE OR REPLACE TEMP TABLE _bstage AS
               SELECT *, file_index FROM read_csv($paths, columns={columns_spec(columns)}, {READ_CSV_OPTIONS})"""


# Where each file of batch $gid starts in _bstage: a data row's number is its rowid's offset from there.
FIRST_ROWID_SQL = """UPDATE _bmeta SET first_rowid = f.first_rowid
                     FROM (SELECT file_index, min(rowid) AS first_rowid FROM _bstage GROUP BY file_index) f
                     WHERE f.file_index = _bmeta.fid AND _bmeta.gid = $gid"""


# Every row of a batch, parsed: the insert reads it, the per-file verdict counts its doubts.
_BROWS_DDL = """CREATE OR REPLACE TEMP TABLE _brows (
    gid INT, fid INT, row_number BIGINT, doubt BOOLEAN, negative BOOLEAN,
    period_start DATE, period_end DATE, name_start DATE, name_end DATE,
    hs8 VARCHAR, commodity_name VARCHAR, partner_code VARCHAR, partner_name VARCHAR,
    regime_code VARCHAR, regime_name VARCHAR, province_code VARCHAR, province_name VARCHAR,
    regime_key VARCHAR, province_key VARCHAR,
    quantity DECIMAL(18, 4), unit VARCHAR, unit_code VARCHAR, declared_unit_code VARCHAR, unknown_code BOOLEAN,
    unit_factor DECIMAL(38, 6), file_unit_zh VARCHAR, declared_unit_zh VARCHAR,
    quantity2 DECIMAL(18, 4), unit2 VARCHAR, value DECIMAL(18, 4), unknown_partner BOOLEAN)"""
ROW_COLUMNS = ", ".join(re.findall(r"(\w+) (?:INT|BIGINT|BOOLEAN|DATE|VARCHAR|DECIMAL)\b", _BROWS_DDL))


def _null_token(text: str) -> str:
    return f"coalesce({text} IN ({NULL_TOKENS_SQL}), true)"


def _not_plain(text: str) -> str:
    """Text the gate's gacc_text() would change beyond trimming (runs of spaces, tabs, breaks, no-break spaces)."""
    return (f"coalesce(contains({text}, '  ') OR contains({text}, chr(9)) OR contains({text}, chr(10)) "
            f"OR contains({text}, chr(12)) OR contains({text}, chr(13)) OR contains({text}, chr(160)), false)")


def _row_sql(header_columns: tuple[str, ...], gid: int) -> str:
    """Each data row parsed the cheap way, with `doubt` set wherever the cheap way might differ from the gate.

    Plain numbers ('1,234.5') are cast after dropping thousands separators, plain months (202506)
    are read as integers, units are matched after trimming: for such values this gives exactly
    what the gate's gacc_number / period / gacc_text rules give. Anything else (another period
    form, a full-width comma, an unknown unit, a bad code, an empty row ...) is a doubt, and a
    file with a doubt goes through the per-file gate instead.
    """
    has = set(header_columns).__contains__
    text = lambda c: f"trim(s.{c})" if has(c) else "NULL::VARCHAR"  # noqa: E731
    number = lambda c: f"TRY_CAST(replace(trim(s.{c}), ',', '') AS DECIMAL(18, 4))" if has(c) else "NULL::DECIMAL(18, 4)"  # noqa: E731
    value_col = "value_usd" if has("value_usd") else "value_cny"
    if has("period"):
        period = "TRY_CAST(CASE WHEN length(trim(s.period)) = 6 THEN trim(s.period) END AS INTEGER)"
        period_start = period_end = (
            f"CASE WHEN {period} // 100 BETWEEN 1990 AND 2100 AND {period} % 100 BETWEEN 1 AND 12 "
            f"THEN make_date({period} // 100, {period} % 100, 1) END"
        )
    else:
        period_start, period_end = "m.name_start", "m.name_end"
    dims = [d for d in ("regime_code", "province_code") if has(d)]
    numbers = [("quantity", "quantity"), ("quantity2", "quantity2"), (value_col, "value")]
    doubts = [
        "r.period_start IS NULL",
        # a code or partner found in the reference lists is well formed (the lists hold nothing
        # else): the pattern is matched only for the others, not on every row
        "CASE WHEN c.hs8 IS NOT NULL THEN false ELSE NOT regexp_full_match(coalesce(r.hs8, ''), '[0-9]{8}') END",
        *(["CASE WHEN pp.partner_code IS NOT NULL AND length(r.partner_raw) <= 3 THEN false "
           "ELSE NOT regexp_full_match(coalesce(r.partner_raw, ''), '[0-9]{1,3}') END"] if has("partner_code") else []),
        *[f"NOT regexp_full_match(coalesce(r.{d}_key, ''), '[0-9A-Za-z]{{1,6}}')" for d in dims],
        *[f"(r.{target} IS NULL AND NOT {_null_token(f'r.{source}_text')})" for source, target in numbers if has(source)],
        "(r.unit IS NULL AND r.quantity IS NOT NULL)",
        f"(r.unit IS NOT NULL AND (a.unit_code IS NULL OR {_not_plain('r.unit')}))",
        f"(r.unit2 IS NOT NULL AND {_not_plain('r.unit2')})",
    ]
    negative = " OR ".join(f"coalesce(r.{target} < 0, false)" for source, target in numbers if has(source))
    unit_factor = """CASE WHEN a.unit_code = coalesce(c.declared_unit_code, a.unit_code) THEN CAST(1 AS DECIMAL(38, 6))
                          WHEN fu.base_unit_code = du.base_unit_code THEN CAST(fu.to_base_factor / du.to_base_factor AS DECIMAL(38, 6))
                     END"""
    return f"""
        SELECT r.gid, r.fid, r.row_number,
               {' OR '.join(doubts)} OR (a.unit_code IS NOT NULL AND ({unit_factor}) IS NULL) AS doubt,
               {negative} AS negative,
               r.period_start, r.period_end, r.name_start, r.name_end,
               r.hs8, r.commodity_name, lpad(r.partner_raw, 3, '0') AS partner_code, r.partner_name,
               r.regime_code, r.regime_name, r.province_code, r.province_name, r.regime_code_key, r.province_code_key,
               r.quantity, r.unit, a.unit_code, coalesce(c.declared_unit_code, a.unit_code) AS declared_unit_code,
               c.hs8 IS NULL AS unknown_code, {unit_factor} AS unit_factor,
               fu.unit_name_zh AS file_unit_zh, du.unit_name_zh AS declared_unit_zh,
               r.quantity2, r.unit2, r.value,
               {"pp.partner_code IS NULL" if has("partner_code") else "false"} AS unknown_partner
        FROM (
            SELECT m.gid, m.fid, s.rowid - m.first_rowid + 1 AS row_number, m.name_start, m.name_end,
                   {period_start} AS period_start, {period_end} AS period_end,
                   trim(s.hs8) AS hs8, nullif({text('commodity_name')}, '') AS commodity_name,
                   {text('partner_code')} AS partner_raw, nullif({text('partner_name')}, '') AS partner_name,
                   nullif({text('regime_code')}, '') AS regime_code, nullif({text('regime_name')}, '') AS regime_name,
                   nullif({text('province_code')}, '') AS province_code, nullif({text('province_name')}, '') AS province_name,
                   {text('regime_code')} AS regime_code_key, {text('province_code')} AS province_code_key,
                   {number('quantity')} AS quantity, {text('quantity')} AS quantity_text,
                   {number('quantity2')} AS quantity2, {text('quantity2')} AS quantity2_text,
                   {number(value_col)} AS value, {text(value_col)} AS {value_col}_text,
                   CASE WHEN NOT {_null_token(text('unit'))} THEN {text('unit')} END AS unit,
                   CASE WHEN NOT {_null_token(text('unit2'))} THEN {text('unit2')} END AS unit2
            FROM _bstage s JOIN _bmeta m ON m.fid = s.file_index AND m.gid = {gid}
        ) r
        LEFT JOIN _unit_alias a ON a.alias = lower(r.unit)
        LEFT JOIN _commodity c ON c.hs8 = r.hs8
        LEFT JOIN _partner pp ON pp.partner_code = lpad(r.partner_raw, 3, '0')
        LEFT JOIN _unit fu ON fu.unit_code = a.unit_code
        LEFT JOIN _unit du ON du.unit_code = coalesce(c.declared_unit_code, a.unit_code)"""


def file_stats_sql(rows: str = "_brows") -> str:
    """Each file's verdict, a row per file of batch $gid, over its parsed rows (`rows`: the checked
    table, or a query shaped like it; bench/probes.py ingest_design computes it over the parse)."""
    return _FILE_STATS_SQL.replace("{rows}", rows)


_FILE_STATS_SQL = """
SELECT fid, count(*) AS rows,
       count(*) FILTER (doubt OR negative OR period_end >= $current_month) AS doubts,
       count(*) - count(DISTINCT (period_start, period_end, hs8, partner_code, regime_key, province_key)) AS duplicate_keys,
       count(*) FILTER (unknown_partner) AS unknown_partners,
       count(*) FILTER (unknown_code) AS unknown_codes,
       count(*) FILTER (name_start IS NOT NULL AND (period_start < name_start OR period_end > name_end)) AS outside_name,
       min(period_start) AS period_start, max(period_end) AS period_end
FROM {rows}
WHERE gid = $gid
GROUP BY fid
"""

_ROW_FLAGS = ("doubts", "duplicate_keys")


class BatchLoader:
    """Loads candidates in order: clean ones in runs, many per statement; the rest one by one.

    Callers pass at most BATCH_FILES candidates at a time: their rows sit in a temp table
    until the batch is loaded.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, file_loader, staging_dir: Path, today: dt.date, run_id: str | None):
        self.con = con
        self.file_loader = file_loader
        self.staging_dir = staging_dir
        self.today = today
        self.run_id = run_id
        self._gid = 0

    def prepare(self, candidates: list[Candidate]) -> list[Candidate]:
        """Transcode the candidates and read their headers: file work only, no DuckDB.

        ingest_landing runs this for the next batch in a thread while DuckDB loads the current
        one (DuckDB releases the GIL while it executes), so transcoding costs little wall time.
        """
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        return [c for c in candidates if _prepare(c, self.staging_dir, self.today)]

    def discard_staged(self, candidates: list[Candidate]) -> None:
        for c in candidates:
            (self.staging_dir / f"{c.load_id}.csv").unlink(missing_ok=True)

    def load(self, candidates: list[Candidate], batched: bool = True, ready: list[Candidate] | None = None):
        """Yield (candidate, LoadResult | Exception) in the candidates' order.

        `ready` is what `prepare(candidates)` returned, when the caller prepared them already.
        `batched=False` sends every file through the per-file gate (CUSTOMS_INGEST_BATCH=0).
        """
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        try:
            if batched:
                self.con.execute(_BROWS_DDL)
                # fid: the file's place in its read_csv's list of paths (read_csv's file_index)
                self.con.execute("CREATE OR REPLACE TEMP TABLE _bmeta (gid INT, fid INT, "
                                 "name_start DATE, name_end DATE, first_rowid BIGINT)")
                if ready is None:
                    ready = self.prepare(candidates)
                by_columns = itertools.groupby(sorted(ready, key=lambda c: c.stage_columns), key=lambda c: c.stage_columns)
                for _, group in by_columns:
                    self._check_group(list(group))
            yield from self._insert_in_order(candidates)
        finally:
            self.discard_staged(candidates)
            for table in ("_bstage", "_brows", "_bmeta", "_brun"):
                self.con.execute(f"DROP TABLE IF EXISTS {table}")

    # -- validation, a group of files with the same columns at a time --------------------------------
    def _check_group(self, group: list[Candidate]) -> None:
        columns = group[0].stage_columns
        try:
            self.con.execute(stage_sql(columns), {"paths": [str(c.shape.path) for c in group]})
        except duckdb.Error:
            if len(group) > 1:  # find the file at fault by halves; the others still go together
                half = len(group) // 2
                self._check_group(group[:half])
                self._check_group(group[half:])
            return  # a single file that does not parse: the per-file gate says why
        self._gid += 1
        gid = self._gid
        self.con.executemany(
            "INSERT INTO _bmeta VALUES (?, ?, ?, ?, NULL)",
            [(gid, i, *(c.name_period or (None, None))) for i, c in enumerate(group)],
        )
        self.con.execute(FIRST_ROWID_SQL, {"gid": gid})
        self.con.execute(f"INSERT INTO _brows ({ROW_COLUMNS}) " + _row_sql(columns, gid))
        self.con.execute("DROP TABLE _bstage")
        stats = self.con.execute(file_stats_sql(), {"current_month": first_of_month(self.today), "gid": gid}).fetchall()
        names = [d[0] for d in self.con.description]
        conversions: dict[int, list] = {}
        for fid, a, b, f, n in self.con.execute(
            """SELECT fid, file_unit_zh, declared_unit_zh, unit_factor, count(*) FROM _brows
               WHERE gid = $gid AND unit_factor <> 1 GROUP BY ALL ORDER BY ALL""",
            {"gid": gid},
        ).fetchall():
            conversions.setdefault(fid, []).append((a, b, f, n))
        for row in stats:
            s = dict(zip(names, row))
            c = group[s["fid"]]
            expected = c.shape.last_content_line - 1
            c.clean = s["rows"] == expected and s["rows"] > 0 and not any(s[k] for k in _ROW_FLAGS)
            if c.clean:
                s["conversions"] = unit_conversions_text(conversions.get(s["fid"], []))
                s["key"] = (gid, s["fid"])
                c.stats = s

    # -- loading, in the landing order ------------------------------------------------------------
    def _insert_in_order(self, candidates: list[Candidate]):
        for c in candidates:
            # the bytes staged must be the bytes hashed, and the file as it was listed; else the
            # per-file gate reads it again, and defers it if it is still changing
            if c.clean and (c.shape.sha256 != c.sha or change_since_listed(c.lf) is not None):
                c.clean = False
        for is_clean, run in itertools.groupby(candidates, key=lambda c: c.clean):
            run = list(run)
            if is_clean:
                try:
                    yield from self._insert_run(run)
                    continue
                except duckdb.Error:  # rolled back: load these files one by one, so that the one at fault is named
                    for c in run:
                        c.clean = False
            for c in run:
                try:
                    yield c, self.file_loader.load(c.lf, c.sha, generation=c.generation)
                except Exception as exc:  # noqa: BLE001 (the caller tells rejections from failures)
                    yield c, exc

    def _insert_run(self, run: list[Candidate]) -> list[tuple[Candidate, LoadResult]]:
        loaded_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        seqs = sorted(r[0] for r in self.con.execute(
            "SELECT nextval('raw.load_seq') FROM range($n)", {"n": len(run)}).fetchall())
        meta = []
        for c, seq in zip(run, seqs):
            s, h = c.stats, c.header
            period_warning = None
            if h.has("period") and c.name_period is not None and s["outside_name"]:
                period_warning = period_name_warning(s["outside_name"], c.period_header, c.name_period)
            s["warnings"] = load_warnings(s["rows"], 0, period_warning, s["unknown_partners"], s["unknown_codes"])
            meta.append((*s["key"], c.load_id, seq, c.lf.rel, c.sha, c.shape.size, c.lf.rel.split("/")[0],
                         c.shape.encoding, h.language, h.currency, ",".join(h.dimensions),
                         "column" if h.has("period") else "file name", s["period_start"], s["period_end"], s["rows"],
                         s["conversions"], "; ".join(s["warnings"]) or None))
        self.con.execute(
            """CREATE OR REPLACE TEMP TABLE _brun (gid INT, fid INT, load_id VARCHAR, load_seq BIGINT,
               file_path VARCHAR, sha VARCHAR, size BIGINT, flow VARCHAR, encoding VARCHAR, lang VARCHAR,
               currency VARCHAR, dims VARCHAR, period_source VARCHAR, period_start DATE, period_end DATE,
               rows BIGINT, conversions VARCHAR, warnings VARCHAR)"""
        )
        self.con.executemany("INSERT INTO _brun VALUES (" + ", ".join(["?"] * 18) + ")", meta)
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(
                """INSERT INTO raw.customs_rows
                SELECT m.load_id, m.file_path, m.sha, $loaded_at, r.row_number, m.flow, m.currency,
                       r.period_start, r.period_end, r.period_end > r.period_start,
                       r.hs8, r.commodity_name, r.partner_code, r.partner_name,
                       r.regime_code, r.regime_name, r.province_code, r.province_name,
                       r.quantity, r.unit, r.unit_code, r.declared_unit_code, r.unit_factor,
                       r.quantity2, r.unit2, r.value
                FROM _brows r JOIN _brun m USING (gid, fid)
                """,
                {"loaded_at": loaded_at},
            )
            # the same rows as the insert above: the months of these loads alone, no scan of raw.customs_rows
            self.con.execute(
                """INSERT INTO raw.customs_load_months
                SELECT DISTINCT m.load_id, r.period_start FROM _brows r JOIN _brun m USING (gid, fid)"""
            )
            self.con.execute(
                """INSERT INTO raw.customs_loads
                SELECT load_id, load_seq, file_path, sha, size, flow, encoding, lang, currency, dims, period_source,
                       period_start, period_end, rows, conversions, warnings, $run_id, $loaded_at
                FROM _brun ORDER BY load_seq""",
                {"run_id": self.run_id, "loaded_at": loaded_at},
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return [(c, LoadResult(c.lf.rel, c.load_id, c.stats["rows"], c.stats["warnings"],
                                "column" if c.header.has("period") else "file name", c.stats["period_start"],
                                c.stats["period_end"])) for c in run]
