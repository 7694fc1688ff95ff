"""Detect a download's text encoding and stream it to UTF-8 for DuckDB's CSV reader.

DuckDB reads only UTF-8 without its encodings extension (which it would download), so
GB18030 files are transcoded in fixed-size chunks: memory stays flat for any file size.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


class EncodingError(ValueError):
    pass


@dataclass(frozen=True)
class Transcoded:
    path: Path
    encoding: str  # utf-8-sig, utf-8 or gb18030


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _try_transcode(src: Path, dst: Path, encoding: str) -> None:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    with src.open("rb") as reader, dst.open("w", encoding="utf-8", newline="") as writer:
        while chunk := reader.read(CHUNK):
            nul = chunk.find(b"\x00")
            if nul >= 0:
                raise EncodingError(f"binary content: NUL byte at offset {offset + nul}; not a CSV text file")
            try:
                writer.write(decoder.decode(chunk))
            except UnicodeDecodeError as exc:
                raise EncodingError(f"byte offset {offset + exc.start}: {exc.reason} as {encoding}") from None
            offset += len(chunk)
        try:
            writer.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError as exc:
            raise EncodingError(f"file ends inside a multi-byte character as {encoding} (truncated download?)") from None


def transcode_to_utf8(src: Path, dst: Path) -> Transcoded:
    """Write `src` as UTF-8 (no BOM) to `dst`; UTF-8 with BOM, UTF-8, then GB18030 are tried."""
    with src.open("rb") as handle:
        head = handle.read(4)
    candidates = ["utf-8-sig"] if head.startswith(codecs.BOM_UTF8) else ["utf-8", "gb18030"]
    failures = []
    for encoding in candidates:
        try:
            _try_transcode(src, dst, encoding)
            return Transcoded(dst, encoding)
        except EncodingError as exc:
            if str(exc).startswith("binary"):
                raise
            failures.append(f"{encoding}: {exc}")
    raise EncodingError("not readable as UTF-8 or GB18030 text (" + "; ".join(failures) + ")")
