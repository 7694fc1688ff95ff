"""The names browsers and download tools give a download while they are still writing it.

Such a file (or folder: Safari writes into `<name>.download/`) is never read: it is skipped,
and the run's report names it. When the tool has also created the final name beside it
(Firefox creates an empty `<name>` next to `<name>.part`; aria2 writes `<name>` next to
`<name>.aria2`), the final name is not finished either: it waits for the next run.
The list is documented in docs/file_formats.md ("Files still being written").
"""

from __future__ import annotations

# Longest first: '.td.cfg' must be stripped whole.
TEMPORARY_SUFFIXES = (
    ".baiduyun.p.downloading",  # Baidu Netdisk (百度网盘)
    ".baiduyun.downloading",
    ".crdownload",  # Chrome, Edge, Brave, Vivaldi
    ".opdownload",  # Opera
    ".downloading",  # Baidu Netdisk and other Chinese download managers
    ".filepart",  # WinSCP
    ".download",  # Safari (a folder), macOS tools
    ".partial",  # Internet Explorer, old Edge
    ".td.cfg",  # Thunder (迅雷)
    ".aria2",  # aria2's control file
    ".xltd",  # Thunder, older versions
    ".part",  # Firefox, many FTP clients
    ".temp",
    ".tmp",  # many tools; Office's ~WRL0001.tmp
    ".bc!",  # BitComet
    ".!ut",  # µTorrent
    ".!qb",  # qBittorrent
    ".td",  # Thunder (迅雷)
)
TEMPORARY_PREFIXES = (
    "~$",  # Office's owner file beside an open workbook
)


def temporary_suffix(name: str) -> str | None:
    lowered = name.lower()
    return next((s for s in TEMPORARY_SUFFIXES if lowered.endswith(s) and len(name) > len(s)), None)


def is_temporary(name: str) -> bool:
    """A name a download (or an editor) uses while the file is not finished."""
    return name.startswith(TEMPORARY_PREFIXES) or temporary_suffix(name) is not None


def finished_name(name: str) -> str | None:
    """The name the download will have when it is done ('x.csv' for 'x.csv.part'), if the name says."""
    suffix = temporary_suffix(name)
    return name[: -len(suffix)] if suffix else None
