"""What `make run` prints at the end: rejected files, failed checks, the headline table."""

from __future__ import annotations

import duckdb

from dagster_project.lib.serving.headline import headline_rows, headline_text
from dagster_project.lib.settings import Settings
from dagster_project.lib.ingest.transcode import sha256_of
from dagster_project.lib.warehouse.database import open_db, table_exists


def _open_latest(settings: Settings) -> duckdb.DuckDBPyConnection | None:
    # The working copy holds this run's audit rows even when the run failed.
    for path in (settings.working_path, settings.warehouse_path):
        if path.exists():
            return open_db(path, read_only=True)
    return None


def current_rejections(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[tuple[str, str]]:
    """Rejections of files that are still in the landing directory with the same content."""
    rows = con.execute(
        "SELECT file_path, file_sha256, arg_max(reason, rejected_at) FROM audit.rejected_files GROUP BY ALL ORDER BY 1"
    ).fetchall()
    # (path, content) pairs loaded: the same bytes under another name may be another download
    # (a file named by its period), so a rejection stands unless this very file was loaded
    loaded = {(r[0], r[1]) for r in con.execute("SELECT file_path, file_sha256 FROM raw.customs_loads").fetchall()}
    out = []
    for path, sha, reason in rows:
        # only the rejected files are looked up, not the landing directory listed (thousands of
        # files at the national size, on every build)
        file = settings.landing_dir / path
        if (path, sha) not in loaded and file.is_file() and (sha is None or sha256_of(file) == sha):
            out.append((path, reason))
    return out


def print_run_report(settings: Settings, result, elapsed: float) -> int:
    con = _open_latest(settings)
    status = 0 if result.success else 1
    print()
    print(f"Run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'} in {elapsed:.1f} s")
    print(f"Served warehouse: {settings.warehouse_path}")
    if con is None:
        return 1
    try:
        rejected = current_rejections(con, settings)
        if rejected:
            status = 1
            print(f"\nRejected files ({len(rejected)}): not loaded; fix or remove them (the landing directory is never modified)")
            for path, reason in rejected:
                print(f"  - {path}: {reason}")
        failed = con.execute(
            "SELECT check_name, asset_key, severity, observed FROM audit.check_results "
            "WHERE list_contains($runs, run_id) AND NOT passed ORDER BY severity, check_name",
            {"runs": list(getattr(result, "run_ids", [result.run_id]))},  # an automatic build is several runs
        ).fetchall()
        if failed:
            print(f"\nFailed checks ({len(failed)}):")
            for name, asset, severity, observed in failed:
                print(f"  - [{severity}] {name} on {asset}: {observed}")
            if any(sev == "ERROR" for _, _, sev, _ in failed):
                status = 1
        if not result.success:
            for event in result.all_events:
                if event.is_step_failure:
                    error = event.step_failure_data.error
                    message = error.message.strip().splitlines()[0] if error else "unknown error"
                    print(f"\nStep {event.step_key} failed: {message}")
            print("\nThe served warehouse keeps its last good state.")
    finally:
        con.close()
    if settings.warehouse_path.exists():
        served = open_db(settings.warehouse_path, read_only=True)
        try:
            if table_exists(served, "marts", "export_growth_monthly"):
                print()
                print(headline_text(headline_rows(served)))
        finally:
            served.close()
    return status
