"""Detect a download's text encoding and stream it to UTF-8 for DuckDB's CSV reader.

DuckDB reads only UTF-8 without its encodings extension (which it would download), so
GB18030 files are transcoded in fixed-size chunks: memory stays flat for any file size.

The same pass notes the shape of the file's lines (no Python loop over rows: byte counts
and a search for empty lines only), which the ingest gate needs to name lines exactly:
how many lines there are, which empty lines sit between data rows (DuckDB skips them),
and whether the last line ends with a line break (a download cut off mid-row does not).
In UTF-8 and GB18030 alike, the bytes of CR and LF never occur inside a multi-byte
character, so lines can be found in the raw bytes.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.lib.ingest.regular_files import open_regular

CHUNK = 1 << 20
# A UTF-8 attempt that decoded this many non-ASCII characters before hitting a bad byte was
# reading a UTF-8 file (GB18030 text is not valid UTF-8 for long): the file is corrupt
# UTF-8, not GB18030, and is rejected rather than read as GB18030 mojibake.
UTF8_EVIDENCE_CHARS = 8
MAX_BLANK_LINES = 1_000_000
MAX_LAST_LINE = 1 << 16

_BLANK_LINE = re.compile(rb"\n\r?(?=\n)")

_SIGNATURES = (
    (b"PK\x03\x04", "binary content: a ZIP archive or Excel .xlsx workbook, not CSV text: download (or save) the query as CSV"),
    (b"\xd0\xcf\x11\xe0", "binary content: an Excel .xls workbook, not CSV text: download (or save) the query as CSV"),
    (b"%PDF", "binary content: a PDF document, not CSV text: download the query as CSV"),
    (b"\x89PNG", "binary content: a PNG image, not CSV text"),
    (b"\xff\xfe", "UTF-16 text: save it as UTF-8 or GB18030 (the platform's own download is GB18030)"),
    (b"\xfe\xff", "UTF-16 text: save it as UTF-8 or GB18030 (the platform's own download is GB18030)"),
)


class EncodingError(ValueError):
    """Not readable text. `line`/`field` locate the first bad byte when there is one."""

    def __init__(
        self,
        message: str,
        line: int | None = None,
        field: int | None = None,
        header_name: str | None = None,
        offset: int = -1,
        non_ascii_before: int = 0,
    ):
        super().__init__(message)
        self.line = line
        self.field = field
        self.header_name = header_name
        self.offset = offset  # byte offset of the first bad byte
        self.non_ascii_before = non_ascii_before  # non-ASCII characters decoded fine before it


@dataclass(frozen=True)
class Transcoded:
    path: Path
    encoding: str  # utf-8-sig, utf-8 or gb18030
    lines: int = 0  # physical lines, a last line without a line break included
    last_content_line: int = 0  # the last line that is not empty (trailing empty lines are fine)
    blank_lines: tuple[int, ...] = field(default_factory=tuple)  # empty lines before last_content_line
    ends_with_line_break: bool = True
    last_line: str | None = None  # the last line when it has no line break (decoded; None if over 64 KiB)
    # of the bytes transcoded, in the same pass: what a load records is what was read, even if
    # the landing file changes a moment later
    sha256: str = ""
    size: int = 0


class _LineScan:
    """Counts lines and finds empty ones, chunk by chunk, in raw bytes."""

    def __init__(self) -> None:
        self.newlines = 0
        self.tail = b""  # the last two bytes of the previous chunk
        self.blank: list[int] = []
        self.last_content_line = 0
        self.last_chunk = b""
        self.partial: bytes | None = b""  # the current line so far, while it is short

    def feed(self, chunk: bytes) -> None:
        data = self.tail + chunk
        before = self.newlines - self.tail.count(b"\n")  # newlines before `data`
        for match in _BLANK_LINE.finditer(data):
            if match.end() < len(self.tail) or len(self.blank) >= MAX_BLANK_LINES:
                continue  # already seen with the previous chunk
            # the empty line starts right after the newline at match.start()
            self.blank.append(before + data.count(b"\n", 0, match.start() + 1) + 1)
        content = chunk.rstrip(b"\r\n")
        if content:
            self.last_content_line = self.newlines + content.count(b"\n") + 1
        self.newlines += chunk.count(b"\n")
        self.tail = data[-2:]
        self.last_chunk = chunk
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            self.partial = chunk[cut + 1:]
        elif self.partial is not None:
            self.partial += chunk
        if self.partial is not None and len(self.partial) > MAX_LAST_LINE:
            self.partial = None

    def result(self, encoding: str) -> dict:
        ends = self.last_chunk.endswith((b"\n", b"\r")) or not self.last_chunk
        lines = self.newlines + (0 if ends else 1)
        last = None if ends or self.partial is None else self.partial.decode(encoding, errors="replace")
        # a file that starts with empty lines: those are found by the start-of-file check
        blank = tuple(b for b in self.blank if b < self.last_content_line)
        return {
            "lines": lines,
            "last_content_line": self.last_content_line,
            "blank_lines": blank,
            "ends_with_line_break": ends,
            "last_line": last,
        }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _locate(src: Path, offset: int, encoding: str) -> tuple[int, int, str | None]:
    """Line, 1-based field and header name of the byte at `offset` (read again only on error)."""
    newlines, line_start, read = 0, 0, 0
    with open_regular(src) as handle:
        first_line = handle.readline(1 << 16)
        handle.seek(0)
        while read < offset:
            chunk = handle.read(min(CHUNK, offset - read))
            if not chunk:
                break
            last = chunk.rfind(b"\n")
            if last >= 0:
                line_start = read + last + 1
            newlines += chunk.count(b"\n")
            read += len(chunk)
        handle.seek(line_start)
        prefix = handle.read(max(0, offset - line_start))
    text = prefix.decode(encoding, errors="replace").split("\r")[-1]
    position = max(1, len(_fields(text))) if text else 1
    header = _fields(first_line.decode(encoding, errors="replace").lstrip("\ufeff").split("\r")[0].rstrip("\n"))
    name = header[position - 1].strip() if newlines > 0 and position <= len(header) else None
    return newlines + 1, position, name


def _fields(line: str) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return line.split(",")


def _try_transcode(src: Path, dst: Path, encoding: str) -> dict:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    # only a failed UTF-8 attempt asks how much non-ASCII text it had read (UTF8_EVIDENCE_CHARS)
    count_non_ascii = encoding.startswith("utf-8")
    scan = _LineScan()
    digest = hashlib.sha256()
    offset = 0
    non_ascii = 0
    first = True
    with open_regular(src) as reader, dst.open("w", encoding="utf-8", newline="") as writer:
        while chunk := reader.read(CHUNK):
            nul = chunk.find(b"\x00")
            if nul >= 0:
                raise EncodingError(f"binary content: NUL byte at offset {offset + nul}; not a CSV text file")
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = offset + max(0, exc.start)
                seen = non_ascii + _non_ascii(chunk[: max(0, exc.start)].decode(encoding, errors="ignore"))
                line, position, name = _locate(src, bad, encoding)
                raise EncodingError(
                    f"byte offset {bad} ({chunk[exc.start:exc.start + 4]!r}): {exc.reason} as {encoding}",
                    line, position, name, offset=bad, non_ascii_before=seen,
                ) from None
            if first:
                text = text.lstrip("\ufeff")  # a BOM that survived decoding (GB18030's own BOM)
                first = False
            if count_non_ascii:
                non_ascii += _non_ascii(text)
            writer.write(text)
            digest.update(chunk)
            scan.feed(chunk)
            offset += len(chunk)
        try:
            writer.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError:
            line, position, name = _locate(src, max(0, offset - 1), encoding)
            raise EncodingError(
                f"the file ends inside a multi-byte character as {encoding} (truncated download?)",
                line, position, name, offset=offset, non_ascii_before=non_ascii,
            ) from None
    return {**scan.result(encoding), "sha256": digest.hexdigest(), "size": offset}


def _non_ascii(text: str) -> int:
    return len(text) - len(text.encode("ascii", errors="ignore"))


def _where(exc: EncodingError) -> str:
    if exc.line is None:
        return ""
    column = f", column {exc.field}" + (f" '{exc.header_name}'" if exc.header_name else "") if exc.field else ""
    return f"line {exc.line}{column}: "


def transcode_to_utf8(src: Path, dst: Path) -> Transcoded:
    """Write `src` as UTF-8 (no BOM) to `dst`; UTF-8 with BOM, UTF-8, then GB18030 are tried."""
    with open_regular(src) as handle:
        head = handle.read(8)
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            raise EncodingError(what)
    candidates = ["utf-8-sig"] if head.startswith(codecs.BOM_UTF8) else ["utf-8", "gb18030"]
    failures: list[EncodingError] = []
    for encoding in candidates:
        try:
            shape = _try_transcode(src, dst, encoding)
            return Transcoded(dst, encoding, **shape)
        except EncodingError as exc:
            if str(exc).startswith("binary"):
                raise
            if encoding == "utf-8" and exc.non_ascii_before >= UTF8_EVIDENCE_CHARS:
                raise EncodingError(
                    f"{_where(exc)}invalid bytes in a UTF-8 file ({exc}); the file is damaged or mixes "
                    "encodings: download it again, or save it as UTF-8 or GB18030",
                    exc.line, exc.field, exc.header_name,
                ) from None
            failures.append(exc)
    # report where the most promising encoding (the one that read furthest) stopped
    worst, encoding = max(zip(failures, candidates), key=lambda pair: pair[0].offset)
    raise EncodingError(
        f"{_where(worst)}not readable as UTF-8 or GB18030 text (as {encoding}: {worst}): "
        "save the file as UTF-8 or GB18030, or download it again",
        worst.line, worst.field, worst.header_name, offset=worst.offset,
    )
