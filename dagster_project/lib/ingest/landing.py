"""Load GACC downloads from the landing directory into raw.customs_rows, one load per file.

Every new or changed file is validated and inserted in one transaction with its lineage, or
recorded in audit.rejected_files with a reason that names the row and column at fault.
Nothing is ever half-loaded, and the landing directory is only ever read.

UN Comtrade files under mirror/comtrade/ take the same way up to their hash, then their own
gate (lib/ingest/comtrade_loader.py) into raw.comtrade_rows.

Only settled regular files are read. Temporary download names are skipped; a file still being
written (modified during the settle interval, or while this run read it) is deferred to the
next run (lib/ingest/settling.py); anything that is not a readable regular file (a FIFO, a
device, a socket, a file or folder the build may not read) is a rejection, refused unopened.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import duckdb

from dagster_project.lib.ingest import batch as batch_loading
from dagster_project.lib.ingest.batch import Candidate
from dagster_project.lib.ingest.comtrade_format import is_comtrade
from dagster_project.lib.ingest.comtrade_loader import ComtradeLoader
from dagster_project.lib.ingest.file_loader import FileLoader
from dagster_project.lib.ingest.landing_files import load_id_for, scan
from dagster_project.lib.ingest.landing_hashes import LandingHashes
from dagster_project.lib.ingest.load_record import LoadResult, Rejected
from dagster_project.lib.ingest.previous_loads import PreviousLoads
from dagster_project.lib.ingest.reference_data import load_reference_tables
from dagster_project.lib.ingest.refusals import cannot_read, refuse_before_reading, unreadable_dir_reason
from dagster_project.lib.ingest.report import Deferral, IngestReport, Rejection, RejectionLog
from dagster_project.lib.ingest.settling import ContentChanged, Deferred, Settler
from dagster_project.lib.settings import SEEDS_DIR


def ingest_landing(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    staging_dir: Path,
    run_id: str | None = None,
    only: list[str] | None = None,
    today: dt.date | None = None,
    seeds_dir: Path = SEEDS_DIR,
    batch: bool | None = None,
) -> IngestReport:
    """Load every new or changed file; skip what is already loaded; record what cannot be read.

    `batch` (default on; CUSTOMS_INGEST_BATCH=0 turns it off) validates and loads clean files
    many per statement (lib/ingest/batch.py); off, every file goes through the per-file gate
    (lib/ingest/file_loader.py). Both give the same rows, loads and rejections.
    """
    if batch is None:
        batch = os.environ.get("CUSTOMS_INGEST_BATCH", "1") != "0"
    report = IngestReport()
    references_loaded = False
    loader = FileLoader(con, staging_dir, today or dt.date.today(), run_id)
    batcher = batch_loading.BatchLoader(con, loader, staging_dir, loader.today, run_id)
    loaded = PreviousLoads(con)
    hashes = LandingHashes(con)
    rejections = RejectionLog(con, run_id)
    # UN Comtrade files (mirror/comtrade/): the same listing, settling, hashes and refusals; their
    # own gate and tables, one file at a time (a partner's year is a few hundred rows)
    mirror = ComtradeLoader(con, staging_dir, run_id)
    mirror_loaded = PreviousLoads(con, "raw.comtrade_loads")
    pending: list[Candidate] = []
    # Batches on their way in, oldest first, each with its transcoding running in a thread: while
    # DuckDB loads one batch, the next one is transcoded (DuckDB releases the GIL as it executes).
    queued: deque[tuple[list[Candidate], Future | None]] = deque()
    transcoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-transcode") if batch else None

    def queue_pending() -> None:
        if pending:
            files = list(pending)
            pending.clear()
            queued.append((files, transcoder.submit(batcher.prepare, files) if transcoder else None))

    def load_oldest() -> None:
        nonlocal references_loaded
        files, preparing = queued.popleft()
        if not references_loaded:  # only when there is something to load: a run with nothing new stays cheap
            load_reference_tables(con, seeds_dir)
            references_loaded = True
        try:
            ready = preparing.result() if preparing else None
            outcomes = list(batcher.load(files, batched=batch, ready=ready))
        finally:
            batcher.discard_staged(files)  # BatchLoader.load does too, unless it failed before starting
        for c, outcome in outcomes:
            if isinstance(outcome, Deferred):
                report.deferred.append(Deferral(c.lf.rel, str(outcome)))
                if isinstance(outcome, ContentChanged):
                    hashes.forget(c.lf.rel)
                continue
            if isinstance(outcome, LoadResult):
                loaded.add(c.lf.rel, c.sha, outcome.period_source, outcome.period_start, outcome.period_end)
                report.loaded.append(outcome)
                report.batched += c.clean
                continue
            if isinstance(outcome, (duckdb.Error, OSError, UnicodeError, csv.Error)):
                # a file we cannot read must not stop the others from loading
                first = str(outcome).strip().splitlines()[0] if str(outcome).strip() else type(outcome).__name__
                outcome = Rejected(f"could not be read ({type(outcome).__name__}): {first[:300]}")
            if not isinstance(outcome, Rejected):
                raise outcome
            rejections.record(report, Rejection(c.lf.rel, c.sha, str(outcome)))

    def flush() -> None:
        queue_pending()
        while queued:
            load_oldest()

    wanted = set(only) if only is not None else None
    listing = scan(landing_dir)
    present = {lf.rel for lf in listing.files}
    for rel, exc in listing.unreadable_dirs:
        if wanted is None or rel in wanted:
            rejections.record(report, Rejection(rel, None, unreadable_dir_reason(exc)))
    report.temporary = [rel for rel in listing.temporary if wanted is None or rel in wanted]
    settler = Settler(listing.listed_at)
    try:
        for lf in listing.files:
            if wanted is not None and lf.rel not in wanted:
                continue
            refusal = refuse_before_reading(lf, landing_dir)
            if refusal is not None:
                rejections.record(report, Rejection(lf.rel, None, refusal))
                continue
            companion = listing.unfinished.get(lf.rel)
            if companion is not None:
                report.deferred.append(Deferral(lf.rel, f"its download is still in progress ({companion} is beside it): "
                                                        "deferred to the next run"))
                continue
            unsettled = settler.unsettled(lf)
            if unsettled is not None:
                report.deferred.append(Deferral(lf.rel, unsettled))
                continue
            try:
                sha = hashes.sha256(lf)
            except Deferred as exc:
                report.deferred.append(Deferral(lf.rel, str(exc)))
                continue
            except FileNotFoundError:
                report.deferred.append(Deferral(lf.rel, "removed while the build ran"))
                continue
            except OSError as exc:
                rejections.record(report, Rejection(lf.rel, None, cannot_read(exc, st=lf.stat)))
                continue
            if is_comtrade(lf.rel):
                _load_mirror(mirror, mirror_loaded, lf, sha, report, rejections, hashes)
                continue
            if any(c.sha == sha for c in pending) or any(c.sha == sha for files, _ in queued for c in files):
                flush()  # whether this is a repeat depends on how the earlier copy loads
            same = loaded.same_download(lf, sha)
            if same is not None:
                report.skipped.append(lf.rel)
                if same != lf.rel:
                    report.duplicate_of[lf.rel] = same
                continue
            generation = loaded.times.get((lf.rel, sha), 0)
            pending.append(Candidate(lf, sha, generation, load_id_for(lf.rel, sha, generation)))
            if len(pending) >= batch_loading.BATCH_FILES:  # read here: tests lower it
                queue_pending()
                while len(queued) > 1:  # keep one batch transcoding while the one before it loads
                    load_oldest()
        flush()
        hashes.save(con, present if wanted is None else None)
        report.hashed = hashes.hashed
        report.settle_wait_seconds = settler.waited
    finally:
        # a failure part-way: nothing of the batches not loaded stays in the staging folder
        for files, preparing in queued:
            if preparing is not None:
                wait([preparing])
            batcher.discard_staged(files)
        if transcoder is not None:
            transcoder.shutdown(wait=True)
    for table in ("_stage", "_stage_units", "_period"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return report


def _load_mirror(loader: ComtradeLoader, loaded: PreviousLoads, lf, sha: str, report: IngestReport,
                 rejections: RejectionLog, hashes: LandingHashes) -> None:
    same = loaded.same_download(lf, sha)
    if same is not None:
        report.skipped.append(lf.rel)
        if same != lf.rel:
            report.duplicate_of[lf.rel] = same
        return
    try:
        result = loader.load(lf, sha, loaded.times.get((lf.rel, sha), 0))
    except Deferred as exc:
        report.deferred.append(Deferral(lf.rel, str(exc)))
        if isinstance(exc, ContentChanged):
            hashes.forget(lf.rel)
        return
    except Rejected as exc:
        rejections.record(report, Rejection(lf.rel, sha, str(exc)))
        return
    except (duckdb.Error, OSError, UnicodeError, csv.Error) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        rejections.record(report, Rejection(lf.rel, sha, f"could not be read ({type(exc).__name__}): {first[:300]}"))
        return
    loaded.add(lf.rel, sha, result.period_source, result.period_start, result.period_end)
    report.mirror_loaded.append(result)
