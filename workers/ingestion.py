"""`ingest_document`: the body of the `documents.ingest` task.

Shape of one run:
1. A PostgreSQL advisory lock on the document (session-level, on its own connection):
   two deliveries of the same task never work at once, and a worker that dies releases
   it with its connection.
2. The document row is reloaded; READY/FAILED means nothing to do (idempotent: a
   duplicate delivery is a no-op; `reindexDocument` puts the row back to QUEUED first).
3. The CPU pipeline (workers/pipeline) runs in a thread and writes embedded chunks to a
   spool file on disk, window by window: memory holds one window, never the document.
   Progress reported by the thread is published from the event loop, throttled.
4. One short transaction swaps the chunks in: delete the old ones, COPY the spool into
   document_chunks, mark the row READY. Readers see the old chunks or the new ones, never
   a mix; a run that dies anywhere before the commit leaves the previous state intact,
   and the next run starts over: nothing is lost, nothing is duplicated.

Scheduling (`ingest_next`, the body of every queued task): see its docstring.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_server.db.models import Document, DocumentChunk, DocumentStatus, PendingFileDeletion
from gql_server.documents import repository
from gql_server.documents.progress import event_from_row, publish_document_event
from gql_server.documents.queue import IngestionLane
from gql_server.documents.service import remove_deleted_files, title_from_filename
from gql_server.documents.storage import remove_file, resolve_storage_path, spool_dir
from gql_server.events.bus import EventBus
from gql_server.events.kinds import DocumentProgressed
from gql_server.settings import Settings
from workers.eta import IngestionEstimate, counts_pages

logger = logging.getLogger(__name__)

PUBLISH_INTERVAL_SECONDS = 0.25  # at most ~4 progress events per second per document
DATABASE_PROGRESS_INTERVAL_SECONDS = 2.0
# Share of the progress bar for parse+chunk+embed; storing takes the rest.
PROCESSING_SHARE = 0.95
# Most pages parsed, chunked and embedded per step (windows also end at ~300,000
# characters of text). Big windows because each window's units are sorted by length and
# batched together: on R-intro.pdf batches padded to 2.25x their real tokens with 10-page
# windows and 1.11x with the whole document in one window.
PAGES_PER_WINDOW = 200

SPOOL_COLUMNS = (
    "document_id",
    "model_id",
    "session_id",
    "chunk_index",
    "text",
    "context",
    "search_text",
    "page_start",
    "page_end",
    "row_start",
    "row_end",
    "location",
    "token_count",
    "embedding",
)


class IngestionCancelled(Exception):
    """The document was deleted, or the process is shutting down."""


@dataclass
class IngestionResources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    bus: EventBus
    concurrency: int = 1
    embedder_name: str | None = None
    cancel_events: dict[uuid.UUID, threading.Event] = field(default_factory=dict)
    _slots: dict[IngestionLane, asyncio.Semaphore] = field(default_factory=dict)

    def slots(self, lane: IngestionLane) -> asyncio.Semaphore:
        """`concurrency` slots per lane (see `ingest_next`)."""
        if lane not in self._slots:
            self._slots[lane] = asyncio.Semaphore(self.concurrency)
        return self._slots[lane]

    async def embedders(self) -> tuple[Any, Any]:
        """The embedder of stored vectors and the semantic splitter's sentence-pass one
        (CHUNKING_EMBEDDING_BACKEND), loaded once per process, off the event loop."""
        from gql_server.embedding.embedder import EmbeddingOptions, get_boundary_embedder, get_embedder

        options = EmbeddingOptions.from_settings(self.settings)

        def load() -> tuple[Any, Any]:
            embedder = get_embedder(self.embedder_name, options=options)
            return embedder, get_boundary_embedder(embedder, options=options)

        return await asyncio.to_thread(load)

    async def embedder(self) -> Any:
        """Both models loaded (the warm-up); the stored-vector one returned."""
        return (await self.embedders())[0]

    def cancel_all(self) -> None:
        for event in self.cancel_events.values():
            event.set()


class ProgressTracker:
    """Written by the pipeline thread, read by the event loop (under a lock)."""

    STAGES = (DocumentStatus.PARSING, DocumentStatus.CHUNKING, DocumentStatus.EMBEDDING)

    def __init__(self, cancel: threading.Event) -> None:
        self._lock = threading.Lock()
        self.cancel = cancel
        self.stage = DocumentStatus.PARSING
        self.fraction = 0.0  # of the parse/chunk/embed work finished
        # When the first unit of work was done (monotonic): the time before it (the parser
        # child starting, the file opening) is a fixed cost, not a pace to extrapolate.
        self.first_work_at: float | None = None
        self.pages_done: int | None = None
        self.page_count: int | None = None
        self.chunk_count = 0
        self.version = 0

    def on_progress(self, stage: Any, done: int, total: int) -> None:
        if self.cancel.is_set():
            raise IngestionCancelled()
        status = DocumentStatus[str(getattr(stage, "value", stage))]
        with self._lock:
            if self.STAGES.index(status) > self.STAGES.index(self.stage):
                self.stage = status
            if status is DocumentStatus.EMBEDDING:
                self.chunk_count = done  # a running total until the run ends
            elif self.page_count is not None:
                self.pages_done = done
            self.version += 1

    def on_work(self, fraction: float) -> None:
        """The share of the document's work done (the pipeline's `WorkMeter`)."""
        if self.cancel.is_set():
            raise IngestionCancelled()
        with self._lock:
            if fraction > self.fraction:
                if self.first_work_at is None:
                    self.first_work_at = time.monotonic()
                self.fraction = fraction
                self.version += 1

    def set_page_count(self, page_count: int | None) -> None:
        with self._lock:
            self.page_count = page_count
            self.version += 1

    def snapshot(self) -> tuple[int, DocumentStatus, float, int | None, int | None, int]:
        with self._lock:
            return (
                self.version,
                self.stage,
                self.fraction,
                self.pages_done,
                self.page_count,
                self.chunk_count,
            )


@dataclass
class PipelineOutcome:
    page_count: int | None
    row_count: int | None
    chunk_count: int
    token_count: int
    warnings: list[str]
    metadata_title: str | None = None


def _csv_field(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return str(value)


def _vector_literal(vector: Any) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector.tolist()) + "]"


def run_pipeline_to_spool(
    path: Path,
    kind_name: str,
    embedders: tuple[Any, Any],
    tracker: ProgressTracker,
    spool_path: Path,
    document: tuple[uuid.UUID, uuid.UUID, uuid.UUID | None],
    file_title: str | None = None,
    csv_limits: Any = None,
    pdf_limits: Any = None,
) -> PipelineOutcome:
    """Runs in a worker thread: parse → chunk → embed, appending chunks to a CSV spool.
    `csv_limits` (a parse_csv.CsvLimits) comes from the worker's Settings."""
    from workers.pipeline.process import process_document
    from workers.pipeline.sniff import DocumentKind as PipelineKind

    document_id, model_id, session_id = document
    embedder, boundary_embedder = embedders
    processing = process_document(
        path,
        PipelineKind[kind_name],
        embedder,
        tracker.on_progress,
        on_work=tracker.on_work,
        pages_per_window=PAGES_PER_WINDOW,
        file_title=file_title,
        boundary_embedder=boundary_embedder,
        csv_limits=csv_limits,
        pdf_limits=pdf_limits,
    )
    tracker.set_page_count(processing.page_count)
    token_count = 0
    row_count: int | None = None
    prefix = f"{document_id},{model_id},{session_id or ''},"
    with spool_path.open("w", encoding="utf-8", newline="") as spool:
        for batch in processing.batches():
            if tracker.cancel.is_set():
                raise IngestionCancelled()
            lines = []
            for chunk in batch.chunks:
                # PostgreSQL text cannot hold NUL; surrogates cannot be encoded.
                text = chunk.text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
                context = (
                    chunk.context.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
                    if chunk.context
                    else None
                )
                search_text = (
                    chunk.search_text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
                    if chunk.search_text is not None
                    else None
                )
                token_count += min(chunk.token_count, embedder.max_tokens)
                if chunk.row_end is not None:
                    row_count = max(row_count or 0, chunk.row_end)
                lines.append(
                    prefix
                    + ",".join(
                        _csv_field(value)
                        for value in (
                            chunk.chunk_index,
                            text,
                            context,
                            search_text,
                            chunk.page_start,
                            chunk.page_end,
                            chunk.row_start,
                            chunk.row_end,
                            json.dumps(chunk.location, ensure_ascii=False) if chunk.location else None,
                            chunk.token_count,
                        )
                    )
                    + ',"'
                    + _vector_literal(chunk.embedding)
                    + '"\n'
                )
            spool.write("".join(lines))
    return PipelineOutcome(
        page_count=processing.page_count,
        row_count=row_count,
        chunk_count=processing.chunk_count,
        token_count=token_count,
        warnings=list(dict.fromkeys(processing.warnings)),
        metadata_title=processing.metadata_title,
    )


def _advisory_key(document_id: uuid.UUID) -> int:
    return int.from_bytes(document_id.bytes[:8], "big", signed=True)


_CANDIDATES_PER_READ = 64


async def ingest_next(
    resources: IngestionResources, lane: IngestionLane, hint: uuid.UUID | None = None
) -> None:
    """Take a slot of `lane`, then ingest the document that is fairest to ingest next in it.

    Why two lanes with their own slots rather than one fair queue: with one set of
    INGEST_CONCURRENCY slots, a model document still waits for the attachments already
    running, and one 250 MB attachment can take many minutes. With a lane each, neither
    kind ever waits for the other; the price is that up to 2 x INGEST_CONCURRENCY
    pipelines run at once in a process when both lanes are busy (each holds one window of
    pages in memory). In Redis mode each lane is its own stream, consumed by `ragql
    worker` with `--concurrency` tasks per lane (workers/broker.py).

    Why the document is chosen here, from the database, and not by the queue's order: a
    task is a token ("one document of this lane can be ingested"), `hint` the document it
    was queued for. Every queued document has queued one token in its lane, and every
    token ingests at most one document of the lane, so tokens never run out while
    documents wait; which document a token ingests is decided when it gets its slot, from
    the rows: model documents oldest first, attachments round-robin over users (one
    user's 50 attachments take turns with another user's one). That holds across API
    processes and workers, whatever order the broker delivers in, and keeps the Redis
    broker's guarantees as they are (a token of a dead worker is redelivered after one
    lease; the document it held is unlocked and working, so it is chosen again).
    Documents being ingested are skipped through their advisory lock; a duplicate token
    finds nothing to do.
    """
    async with resources.slots(lane):
        offset = 0
        while True:
            async with resources.sessionmaker() as session:
                # The lane's order (gql_server/documents/repository.py): model documents
                # oldest first, attachments round-robin over their owners.
                candidates = await repository.lane_candidates(
                    session, lane, limit=_CANDIDATES_PER_READ, offset=offset
                )
            for document_id in candidates:
                if await _ingest_if_free(resources, document_id):
                    if hint is not None and document_id != hint:
                        logger.info("lane %s: ingested document %s before %s", lane.value, document_id, hint)
                    return
            if len(candidates) < _CANDIDATES_PER_READ:
                return
            offset += _CANDIDATES_PER_READ


async def ingest_document(
    resources: IngestionResources,
    document_id: uuid.UUID,
    lane: IngestionLane = IngestionLane.MODEL_DOCUMENTS,
) -> None:
    """Ingest this one document (`ragql ingest`), in a slot of `lane`."""
    async with resources.slots(lane):
        await _ingest_if_free(resources, document_id)


async def _ingest_if_free(resources: IngestionResources, document_id: uuid.UUID) -> bool:
    """Ingest the document unless another task holds it or it is no longer working;
    False when there was nothing to do."""
    async with resources.engine.connect() as lock_connection:
        lock_connection = await lock_connection.execution_options(isolation_level="AUTOCOMMIT")
        key = _advisory_key(document_id)
        if not await lock_connection.scalar(select(func.pg_try_advisory_lock(key))):
            logger.debug("document %s is being ingested elsewhere", document_id)
            return False
        try:
            return await _ingest_locked(resources, document_id)
        finally:
            with contextlib.suppress(Exception):
                await lock_connection.scalar(select(func.pg_advisory_unlock(key)))


async def _publish(resources: IngestionResources, event: DocumentProgressed) -> None:
    try:
        await publish_document_event(resources.bus, event)
    except Exception:
        logger.exception("could not publish progress of document %s", event.document_id)


async def _update_row(
    resources: IngestionResources, document_id: uuid.UUID, **values: Any
) -> Document | None:
    async with resources.sessionmaker.begin() as session:
        result = await session.execute(
            update(Document).where(Document.id == document_id).values(**values).returning(Document)
        )
        return result.scalar_one_or_none()


async def _ingest_locked(resources: IngestionResources, document_id: uuid.UUID) -> bool:
    async with resources.sessionmaker() as session:
        document = await repository.get_document(session, document_id)
    if document is None:
        logger.info("document %s no longer exists; nothing to ingest", document_id)
        return False
    if not document.status.is_working:
        logger.info("document %s is already %s; nothing to do", document_id, document.status.value)
        return False
    # The embedding model is loaded (once per process) while the document is still QUEUED,
    # so a run's start-to-end time, which later ETAs are estimated from, is the run's own.
    # A model that cannot load fails the document in `_run`, which asks for it again.
    with contextlib.suppress(Exception):
        await resources.embedders()
    started = datetime.now(UTC)
    row = await _update_row(
        resources,
        document_id,
        status=DocumentStatus.PARSING,
        progress=0.0,
        chunk_count=0,  # counts this run's chunks from here (a running total until READY)
        error=None,
        attempts=Document.attempts + 1,
        processing_started_at=started,
        processed_at=None,
    )
    if row is None:
        return False
    estimate = await _estimate_for(resources, row)
    # The history's ETA from the first event (a PDF's pages are known from an earlier run, if any).
    await _publish(
        resources,
        dataclasses.replace(event_from_row(row), eta_seconds=estimate.remaining(0.0, 0.0, row.page_count)),
    )
    cancel = threading.Event()
    resources.cancel_events[document_id] = cancel
    spool_path = spool_dir(resources.settings) / f"{document_id}.{uuid.uuid4().hex[:8]}.csv"
    try:
        await _run(resources, row, estimate, cancel, spool_path)
    except IngestionCancelled:
        logger.info("ingestion of document %s was cancelled", document_id)
    except Exception as error:
        logger.exception("ingestion of document %s failed", document_id)
        await _fail(resources, document_id, _describe_failure(error))
    finally:
        resources.cancel_events.pop(document_id, None)
        remove_file(spool_path)
    return True


def _describe_failure(error: BaseException) -> str:
    from workers.pipeline.errors import DocumentParseError, UnsupportedDocument

    if isinstance(error, (DocumentParseError, UnsupportedDocument)):
        return error.reason
    if isinstance(error, MemoryError):
        return "The document needed more memory than allowed to process."
    from gql_server.documents.storage import DISK_FULL_MESSAGE, is_storage_full

    if is_storage_full(error):
        return DISK_FULL_MESSAGE
    return "The document could not be processed because of an internal error; the server log has details."


async def _fail(resources: IngestionResources, document_id: uuid.UUID, reason: str) -> None:
    try:
        row = await _update_row(
            resources,
            document_id,
            status=DocumentStatus.FAILED,
            error=reason,
            processed_at=datetime.now(UTC),
            # The chunks that are searchable (an earlier run's, or none), not this run's
            # running total.
            chunk_count=select(func.count())
            .select_from(DocumentChunk)
            .where(DocumentChunk.document_id == document_id)
            .scalar_subquery(),
        )
    except Exception:
        logger.exception("could not mark document %s as FAILED", document_id)
        return
    if row is not None:
        await _publish(resources, event_from_row(row))


async def _estimate_for(resources: IngestionResources, row: Document) -> IngestionEstimate:
    """The run's ETA, seeded with this install's recent speed for the kind (workers/eta.py)."""
    per_page = counts_pages(row.kind)
    try:
        async with resources.sessionmaker() as session:
            rate = await repository.recent_seconds_per_unit(session, row.kind, per_page=per_page)
    except Exception:
        logger.exception("could not read recent ingestion speeds; the ETA uses this run's own pace")
        rate = None
    return IngestionEstimate(rate, row.size_bytes, per_page)


async def _report_progress(
    resources: IngestionResources,
    row: Document,
    tracker: ProgressTracker,
    started_monotonic: float,
    stop: asyncio.Event,
    estimate: IngestionEstimate,
) -> None:
    """Publish the tracker's state at most every PUBLISH_INTERVAL and save it to the row now and then."""
    base = event_from_row(row)
    published_version = -1
    saved_at = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PUBLISH_INTERVAL_SECONDS)
        if stop.is_set():
            return
        version, stage, fraction, pages_done, page_count, chunk_count = tracker.snapshot()
        if version == published_version:
            continue
        published_version = version
        elapsed = time.monotonic() - started_monotonic
        # Storing is the last (1 - PROCESSING_SHARE) of the work.
        progress = round(PROCESSING_SHARE * fraction, 4)
        first_work_at = tracker.first_work_at
        start_up = first_work_at - started_monotonic if first_work_at is not None else 0.0
        eta = estimate.remaining(elapsed, PROCESSING_SHARE * fraction, page_count, start_up=start_up)
        await _publish(
            resources,
            dataclasses.replace(
                base,
                status=stage,
                progress=progress,
                pages_done=pages_done,
                page_count=page_count,
                chunk_count=chunk_count,
                elapsed_seconds=elapsed,
                eta_seconds=eta,
                at=time.time(),
            ),
        )
        if time.monotonic() - saved_at >= DATABASE_PROGRESS_INTERVAL_SECONDS:
            saved_at = time.monotonic()
            try:
                still_there = await _update_row(
                    resources,
                    row.id,
                    status=stage,
                    progress=progress,
                    page_count=page_count,
                    chunk_count=chunk_count,
                )
            except Exception:
                logger.exception("could not save progress of document %s", row.id)
                continue
            if still_there is None:
                tracker.cancel.set()  # deleted while we worked


async def _run(
    resources: IngestionResources,
    row: Document,
    estimate: IngestionEstimate,
    cancel: threading.Event,
    spool_path: Path,
) -> None:
    from workers.pipeline.errors import DocumentParseError
    from workers.pipeline.parse_csv import CsvLimits
    from workers.pipeline.parse_pdf import PdfExtractionLimits

    settings = resources.settings
    if not row.storage_path:
        raise DocumentParseError("The uploaded file is no longer stored; upload it again.")
    path = resolve_storage_path(settings, row.storage_path)
    if not path.exists():
        raise DocumentParseError("The uploaded file is missing from the storage directory; upload it again.")
    embedders = await resources.embedders()
    tracker = ProgressTracker(cancel)
    stop = asyncio.Event()
    started_monotonic = time.monotonic()
    reporter = asyncio.create_task(
        _report_progress(resources, row, tracker, started_monotonic, stop, estimate)
    )
    try:
        outcome = await asyncio.to_thread(
            run_pipeline_to_spool,
            path,
            row.kind.value,
            embedders,
            tracker,
            spool_path,
            (row.id, row.model_id, row.session_id),
            Path(row.filename).stem,
            CsvLimits(max_columns=settings.csv_max_columns, max_cell_chars=settings.csv_max_cell_chars),
            PdfExtractionLimits(
                ocr_languages=settings.ocr_languages if settings.ocr_enabled else "",
                max_image_pixels=settings.ocr_max_image_pixels,
                max_image_pages=settings.ocr_max_image_pages,
                max_columns=settings.csv_max_columns,
                max_cell_chars=settings.csv_max_cell_chars,
            ),
        )
    finally:
        stop.set()
        await reporter
    if cancel.is_set():
        raise IngestionCancelled()
    elapsed = time.monotonic() - started_monotonic
    storing = await _update_row(
        resources,
        row.id,
        status=DocumentStatus.STORING,
        progress=PROCESSING_SHARE,
        page_count=outcome.page_count,
        row_count=outcome.row_count,
        chunk_count=outcome.chunk_count,
    )
    if storing is None:
        raise IngestionCancelled()
    await _publish(
        resources,
        dataclasses.replace(
            event_from_row(storing),
            pages_done=outcome.page_count,
            elapsed_seconds=elapsed,
            eta_seconds=estimate.remaining(elapsed, PROCESSING_SHARE, outcome.page_count),
        ),
    )
    final = await _swap_in_chunks(resources, row.id, spool_path, outcome)
    if final is None:
        raise IngestionCancelled()
    await _publish(resources, event_from_row(final))
    logger.info(
        "document %s READY: %s%d chunks, %d tokens in %.1f s",
        row.id,
        # CSV, text and sheet-only documents have no pages: say nothing rather than "None pages".
        f"{outcome.page_count} pages, " if outcome.page_count is not None else "",
        outcome.chunk_count,
        outcome.token_count,
        time.monotonic() - started_monotonic,
    )


async def _swap_in_chunks(
    resources: IngestionResources, document_id: uuid.UUID, spool_path: Path, outcome: PipelineOutcome
) -> Document | None:
    outbox_id: int | None = None
    async with resources.sessionmaker.begin() as session:
        # Locks the row: a concurrent delete waits for this short transaction (or wins first).
        document = await repository.get_document(session, document_id, for_update=True)
        if document is None:
            return None
        await repository.delete_chunks(session, document)
        if outcome.chunk_count:
            connection = await session.connection()
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.copy_to_table(
                "document_chunks", source=str(spool_path), columns=list(SPOOL_COLUMNS), format="csv"
            )
        document.status = DocumentStatus.READY
        document.progress = 1.0
        document.page_count = outcome.page_count
        document.row_count = outcome.row_count
        document.chunk_count = outcome.chunk_count
        document.warnings = outcome.warnings
        document.error = None
        document.processed_at = datetime.now(UTC)
        if outcome.metadata_title and document.title == title_from_filename(document.filename):
            # Nobody chose a title at upload: the PDF's own names it better than its file name.
            document.title = outcome.metadata_title[:500]
        if not document.file_kept and document.storage_path:
            # KEEP_ORIGINAL_FILES off: the original goes once it is searchable.
            with contextlib.suppress(ValueError):
                pending = PendingFileDeletion(
                    path=str(resolve_storage_path(resources.settings, document.storage_path))
                )
                session.add(pending)
                await session.flush()
                outbox_id = pending.id
            document.storage_path = None
        await session.flush()
    if outbox_id is not None:
        await remove_deleted_files(resources.sessionmaker, [outbox_id])
    return document
