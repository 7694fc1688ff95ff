"""The dbt docs page (`dbt docs generate --static`) with no remote load left in it."""
from __future__ import annotations

from pathlib import Path

from dagster_project.lib.offline_html import localise

# dbt's page adds a script tag for the Snowplow tracker from a CDN when the manifest allows usage
# stats (ours never does: DBT_SEND_ANONYMOUS_USAGE_STATS=False); the URL still names a remote host,
# so it becomes an empty script. Nothing else on the page loads from the network.
TRACKER_URLS = {"//d1fc8wv8zag5ca.cloudfront.net/2.9.0/sp.js": "data:,"}


def offline_page(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    new = localise(text, TRACKER_URLS.get)
    if new != text:
        page.write_text(new, encoding="utf-8")
