"""What `make run` prints at the end: the warehouse files' notices, rejected files, failed checks, what
failed and whether the new file was published, the headline table. Never a traceback: a file it
cannot read is named in one line, and the exit status is 1."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from dagster_project.lib.serving.headline import headline_rows, headline_text
from dagster_project.lib.settings import Settings
from dagster_project.lib.ingest.refusals import rejection_stands
from dagster_project.lib.warehouse.damage import damage_reason
from dagster_project.lib.warehouse.database import open_db, table_exists


def _open(path: Path, unreadable: list[Path]) -> duckdb.DuckDBPyConnection | None:
    """A read-only connection; None when there is no such file, or when it cannot be read: then one line
    says why and `path` joins `unreadable` (a damaged file gives no traceback, and is named once)."""
    if not path.exists() or path in unreadable:
        return None
    try:
        return open_db(path, read_only=True)
    except duckdb.Error as exc:
        print(f"\nCannot read {path}: {damage_reason(exc) or str(exc).strip().splitlines()[0]}")
        unreadable.append(path)
        return None


def current_rejections(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[tuple[str, str]]:
    """Rejections of files that are still in the landing directory with the same content."""
    rows = con.execute(
        "SELECT file_path, file_sha256, arg_max(reason, rejected_at) FROM audit.rejected_files GROUP BY ALL ORDER BY 1"
    ).fetchall()
    # (path, content) pairs loaded: the same bytes under another name may be another download
    # (a file named by its period), so a rejection stands unless this very file was loaded
    loaded = {(r[0], r[1]) for r in con.execute(
        "SELECT file_path, file_sha256 FROM raw.customs_loads UNION ALL SELECT file_path, file_sha256 FROM raw.comtrade_loads"
    ).fetchall()}
    out = []
    for path, sha, reason in rows:
        # only the rejected files are looked up, not the landing directory listed (thousands of
        # files at the national size, on every build)
        # (a FIFO, a device or an unreadable folder stands without being opened; see refusals.py)
        if (path, sha) not in loaded and rejection_stands(settings.landing_dir, path, sha):
            out.append((path, reason))
    return out


SERVED_ASSET = ["serving", "warehouse"]
EXPLAINED_ERRORS = {"WarehouseDamaged"}  # their whole message says what to do, not only the first line


def published_this_build(result) -> bool:
    """Whether `serving/warehouse` materialised in the build's runs: the new file is what readers see."""
    return any(list(e.asset_key.path) == SERVED_ASSET for e in result.get_asset_materialization_events())


def _user_error(error):
    """The error the step's code raised, under Dagster's 'Error occurred while executing op' wrapper."""
    while error is not None and error.cls_name.startswith("DagsterExecution") and error.cause is not None:
        error = error.cause
    return error


def step_failures(result) -> list[tuple[str, list[str]]]:
    """(step key, lines of the message) of each failed step, in order."""
    out = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        error = _user_error(event.step_failure_data.error)
        if error is None:
            out.append((event.step_key, ["unknown error"]))
            continue
        text = error.message.strip()
        qualified = text.split(":", 1)[0]
        if qualified.endswith(error.cls_name):  # "package.module.Class: message" -> "Class: message"
            text = error.cls_name + text[len(qualified):]
        lines = text.splitlines() or [error.cls_name]
        out.append((event.step_key, lines if error.cls_name in EXPLAINED_ERRORS else lines[:1]))
    return out


def _print_failures(settings: Settings, result, served_readable: bool) -> None:
    failures = step_failures(result)
    for step, lines in failures:
        print(f"\nStep {step} failed: {lines[0]}")
        for line in lines[1:]:
            print(f"  {line}")
    if published_this_build(result):
        steps = ", ".join(step.replace("__", "/") for step, _ in failures) or "a step"
        print(f"\nThe new warehouse WAS published: {settings.warehouse_path} holds this build's data (BI tools see it "
              f"when they next connect). What failed after the publish: {steps}. Fix that (e.g. free disk space) and "
              "run `make run` again.")
    elif served_readable:
        print("\nNothing was published: the served warehouse keeps its last good state.")
    else:
        print("\nNothing was published.")


def _print_waiting_files(result) -> None:
    """Files the ingest left for the next run: not rejections (the exit status stays 0), but a
    user who just dropped a download wants to know it was not loaded yet, and why."""
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        deferred = getattr(metadata.get("deferred_files"), "value", None) or []
        temporary = getattr(metadata.get("temporary_files"), "value", None) or []
        mirror = getattr(metadata.get("mirror_files_loaded_this_run"), "value", None)
        if mirror:
            print(f"\nMirror statistics: loaded {mirror} UN Comtrade file(s) from mirror/comtrade/")
        if deferred:
            print(f"\nDeferred to the next run ({len(deferred)}): still changing, read once settled")
            for path, reason in deferred:
                print(f"  - {path}: {reason}")
        if temporary:
            print(f"\nSkipped, still downloading under a temporary name ({len(temporary)}): {', '.join(temporary[:20])}"
                  + (f" and {len(temporary) - 20} more" if len(temporary) > 20 else ""))


def print_run_report(settings: Settings, result, elapsed: float, notices: list[str] | None = None) -> int:
    """What `make run` prints at the end; its exit status (0: success and nothing rejected; 1 otherwise).

    `notices`: what the build said about the warehouse files (lib/warehouse/notices.py)."""
    status = 0 if result.success else 1
    print()
    print(f"Run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'} in {elapsed:.1f} s")
    print(f"Served warehouse: {settings.warehouse_path}")
    if notices:
        print(f"\nWarehouse files ({len(notices)}):")
        for message in notices:
            print(f"  - {message}")
    _print_waiting_files(result)
    unreadable: list[Path] = []
    # The working copy holds this run's audit rows even when the run failed.
    con, path = _open(settings.working_path, unreadable), settings.working_path
    if con is None:
        con, path = _open(settings.warehouse_path, unreadable), settings.warehouse_path
    if con is None:
        status = 1
    else:
        with _reading(con, path, unreadable):
            status = max(status, _print_audit(con, settings, result))
    if not result.success:
        _print_failures(settings, result, settings.warehouse_path not in unreadable)
    served = _open(settings.warehouse_path, unreadable)
    if served is not None:
        with _reading(served, settings.warehouse_path, unreadable):
            if table_exists(served, "marts", "export_growth_monthly"):
                print()
                print(headline_text(headline_rows(served)))
    return 1 if unreadable else status


@contextmanager
def _reading(con: duckdb.DuckDBPyConnection, path: Path, unreadable: list[Path]) -> Iterator[None]:
    """Close `con` after the block; a file that opened but fails on a block further in: one line, no traceback."""
    try:
        yield
    except duckdb.Error as exc:
        reason = damage_reason(exc)
        if reason is None:
            raise
        print(f"\nCannot read {path}: {reason}")
        unreadable.append(path)
    finally:
        con.close()


def _print_audit(con: duckdb.DuckDBPyConnection, settings: Settings, result) -> int:
    """Rejected files and failed checks of this build; 1 when any file was rejected or an error check failed."""
    status = 0
    rejected = current_rejections(con, settings)
    if rejected:
        status = 1
        print(f"\nRejected files ({len(rejected)}): not loaded; fix or remove them (the landing directory is never modified)")
        for path, reason in rejected:
            print(f"  - {path}: {reason}")
    failed = con.execute(
        "SELECT check_name, asset_key, severity, observed FROM audit.check_results "
        "WHERE list_contains($runs, dagster_run_id) AND NOT passed ORDER BY severity, check_name",
        {"runs": list(getattr(result, "run_ids", [result.run_id]))},  # an automatic build is several runs
    ).fetchall()
    if failed:
        print(f"\nFailed checks ({len(failed)}):")
        for name, asset, severity, observed in failed:
            print(f"  - [{severity}] {name} on {asset}: {observed}")
        if any(sev == "ERROR" for _, _, sev, _ in failed):
            status = 1
    return status
