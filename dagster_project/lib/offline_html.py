"""Pages that open with no network: find what a page loads from a remote host, and point it elsewhere.

The project writes HTML (GX data docs, the dbt docs, the chart report) that people open from disk
on warehouse servers without internet. A page is offline-ready when nothing it *loads* is remote:
scripts, stylesheets, images, fonts, frames (`src`, `<link href>`, CSS `url()` and `@import`,
`fetch()`, a script's `.src = ...`). Links a reader clicks (`<a href>`) are not loads and stay.
"""
from __future__ import annotations

import re
from typing import Callable

# a remote URL: http(s)://host/... or protocol-relative //host/...
_REMOTE = r"(?:https?:)?//[^\s\"'()<>]+"

_LOAD_PATTERNS = [
    # HTML elements that load what their src/href/data/poster names
    re.compile(
        r"<(?:script|link|img|iframe|source|embed|video|audio|object|input|track)\b[^>]*?\s"
        r"(?:src|href|data|poster|srcset)\s*=\s*[\"']?(" + _REMOTE + ")",
        re.IGNORECASE,
    ),
    re.compile(r"url\(\s*[\"']?(" + _REMOTE + ")", re.IGNORECASE),  # CSS, inline or in <style>
    re.compile(r"@import\s+(?:url\()?\s*[\"']?(" + _REMOTE + ")", re.IGNORECASE),
    re.compile(r"\.src\s*=\s*[\"'](" + _REMOTE + ")"),  # a script adding a script
    re.compile(r"\b(?:fetch|import)\(\s*[\"'](" + _REMOTE + ")"),
    re.compile(r"\.open\(\s*[\"'][A-Z]+[\"']\s*,\s*[\"'](" + _REMOTE + ")"),  # XMLHttpRequest
]

_TAG = re.compile(r"<(?:script|link|img)\b[^>]*>", re.IGNORECASE)
_SRI = re.compile(r"\s(?:integrity|crossorigin)(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?", re.IGNORECASE)


def remote_loads(text: str) -> list[str]:
    """Every remote URL `text` (HTML, CSS or JS) would load, in order of appearance, repeats kept."""
    found = []
    for pattern in _LOAD_PATTERNS:
        found += [(m.start(1), m.group(1)) for m in pattern.finditer(text)]
    return [url for _, url in sorted(found)]


def localise(text: str, local_for: Callable[[str], str | None]) -> str:
    """`text` with each remote URL it loads replaced by `local_for(url)` (kept when that is None).

    Tags whose URL is replaced lose their `integrity`/`crossorigin` attributes: subresource
    integrity is for CDNs, and a browser refuses a file:// script that carries `crossorigin`.
    """
    def rewrite_tag(match: re.Match) -> str:
        tag = match.group(0)
        new = _replace_urls(tag, local_for)
        return _SRI.sub("", new) if new != tag else tag

    text = _TAG.sub(rewrite_tag, text)
    return _replace_urls(text, local_for)


def _replace_urls(text: str, local_for: Callable[[str], str | None]) -> str:
    for url in dict.fromkeys(remote_loads(text)):
        local = local_for(url)
        if local is not None:
            text = re.sub(r"(?<=[\"'(=\s])" + re.escape(url) + r"(?=[\"')\s>])", local, text)
    return text
