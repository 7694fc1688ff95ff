"""A staged download (the UTF-8 copy DuckDB reads): how both load paths read it, its header,
and DuckDB's CSV errors on it said in terms of the download the user has."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_project.lib.ingest import gacc_format as fmt
from dagster_project.lib.ingest.landing_files import LandingFile
from dagster_project.lib.ingest.load_record import Rejected
from dagster_project.lib.ingest.settling import check_content, check_unchanged
from dagster_project.lib.ingest.transcode import EncodingError, Transcoded, transcode_to_utf8

# How both load paths read staged files (`columns` aside): strictly, every value as text.
READ_CSV_OPTIONS = ("header=true, auto_detect=false, delim=',', quote='\"', escape='\"', strict_mode=true, "
                    "null_padding=false, max_line_size=1048576")


@contextmanager
def staged_download(lf: LandingFile, sha: str, staging_dir: Path, load_id: str) -> Iterator[tuple[Path, Transcoded]]:
    """The landing file transcoded to UTF-8 in `staging_dir`, and its shape; deleted on exit.

    From here on only this copy is read, and its bytes are the ones hashed (`sha`): a file that
    changed while it was read is deferred (settling.Deferred) rather than judged, so a download
    cut short by its writer is not rejected as a bad file.
    """
    staging_dir.mkdir(parents=True, exist_ok=True)
    staged = staging_dir / f"{load_id}.csv"
    try:
        try:
            shape = transcode_to_utf8(lf.path, staged)
        except EncodingError as exc:
            check_unchanged(lf, "while it was read")
            raise Rejected(f"encoding: {exc}") from None
        check_content(lf, sha, shape.sha256)
        check_unchanged(lf, "while it was read")
        if shape.size == 0:
            raise Rejected("empty file (0 bytes): the download failed; download it again")
        yield staged, shape
    finally:
        staged.unlink(missing_ok=True)


def first_line(path: Path) -> list[str]:
    """The header row's fields; [] when the first line is blank."""
    with path.open("r", encoding="utf-8", newline="") as handle:
        line = handle.readline().rstrip("\r\n")
        if not line.strip():
            return []
        return next(csv.reader([line]))


def header_name(raw: str) -> str:
    """A header cell as the user reads it (without the byte-order mark some tools write)."""
    return raw.strip().lstrip("\ufeff").strip()


def stage_columns(header: fmt.Header, raw_header: list[str]) -> tuple[str, ...]:
    """The columns to declare to read_csv.

    GACC rows end with a comma, and so does the header. DuckDB accepts one trailing empty value
    after the declared columns, so the header's empty last column is not declared: a row with
    a value too many (an unquoted '1,000') is then an error instead of shifting every value.
    """
    columns = list(header.columns)
    if len(columns) > 1 and not raw_header[-1].strip():
        columns.pop()
    return tuple(columns)


def columns_spec(columns: tuple[str, ...]) -> str:
    """read_csv's `columns` for a header's columns, every one read as text."""
    return "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"


def _header_column(raw_header: list[str], position: int) -> str:
    name = header_name(raw_header[position - 1]) if 0 < position <= len(raw_header) else ""
    return f"column {position}" + (f" '{name}'" if name else "")


def stage_rows(con, table: str, path, columns: tuple[str, ...]) -> None:
    """Read a transcoded download into the temp table `table`, its data rows numbered from 1 (the
    row a rejection names). Raises duckdb.Error where DuckDB's reader refuses the file."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT row_number() OVER () AS row_number, *
            FROM read_csv($path, columns={columns_spec(columns)}, {READ_CSV_OPTIONS})""",
        {"path": str(path)},
    )


def csv_error(message: str, raw_header: list[str], shape: Transcoded) -> str:
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
