"""Documents: queries, mutations and progress subscriptions. Thin: check, call the service, map."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import strawberry
from strawberry.file_uploads import Upload

from gql_server.access.policy import can_read_model
from gql_server.access.watch import AccessLost, AccessWatch, watch_access
from gql_server.context import Info
from gql_server.db import models
from gql_server.documents import repository, service
from gql_server.documents.acceptance import accept_upload
from gql_server.documents.access import can_read_document
from gql_server.documents.progress import (
    document_channel,
    event_from_row,
    is_final,
    model_channel,
    ordering_key,
    publish_document_event,
)
from gql_server.documents.queue import IngestionLane, enqueue_ingestion
from gql_server.documents.types import (
    DeleteDocumentResult,
    Document,
    DocumentDeleted,
    DocumentListResult,
    DocumentProgress,
    DocumentReindexQueued,
    DocumentStatus,
    DocumentUploaded,
    ReindexDocumentResult,
    UploadDocumentResult,
)
from gql_server.errors import PublicError, maps_domain_errors
from gql_server.events.kinds import DocumentProgressed, Event
from gql_server.kit.field_permissions import admin_scope, signed_in
from gql_server.kit.page import build_page, parse_page_arguments

logger = logging.getLogger(__name__)

# How long a subscription waits for a bus event before re-reading the database: pub/sub
# can drop messages (Redis restarts, slow consumers); the row is the source of truth.
RESYNC_SECONDS = 5.0
# While a document waits in its queue, how often its place is counted again. Polled from
# the rows rather than pushed: the place changes when any document of the lane starts,
# ends or is deleted, in whichever process, and one indexed count per waiting document
# every few seconds is cheaper than an event to every waiting document at each change.
QUEUE_POSITION_SECONDS = 1.0


async def _with_places(session: Any, rows: list[models.Document]) -> list[Document]:
    ahead = await repository.documents_ahead_of(session, rows)
    return [Document.from_row(row, ahead.get(row.id)) for row in rows]


async def _place_of(state: Any, event: DocumentProgressed) -> int | None:
    """How many documents are ahead of the event's document, when it is QUEUED."""
    if event.status is not models.DocumentStatus.QUEUED or event.deleted:
        return None
    lane = IngestionLane.of(event.session_id)
    async with state.sessionmaker() as session:
        return (await repository.documents_ahead(session, lane, [event.document_id])).get(event.document_id)


class DocumentNotFound(PublicError):
    def __init__(self) -> None:
        super().__init__("Document not found.", "NOT_FOUND")


class ModelNotFound(PublicError):
    def __init__(self) -> None:
        super().__init__("Model not found.", "NOT_FOUND")


@strawberry.type
class DocumentQuery:
    @strawberry.field(
        description="Documents of a model (not chat attachments), newest first. Readers of the model.",
        extensions=signed_in(),
    )
    @maps_domain_errors
    async def documents(
        self,
        info: Info,
        model_id: uuid.UUID,
        first: int = 50,
        offset: int | None = None,
        after: str | None = None,
        status: DocumentStatus | None = None,  # type: ignore[valid-type]
    ) -> DocumentListResult:
        user = info.context.require_user()
        request = parse_page_arguments(first, offset, after)
        async with info.context.sessionmaker() as session:
            rows, total = await service.list_model_documents(
                session, user, model_id, status=status, limit=request.limit, offset=request.offset
            )
            documents = await _with_places(session, rows)
        return build_page(documents, total, request)

    @strawberry.field(
        description="A document, or null when it does not exist or you may not see it.",
        extensions=signed_in(),
    )
    async def document(self, info: Info, id: uuid.UUID) -> Document | None:
        user = info.context.require_user()
        async with info.context.sessionmaker() as session:
            row = await service.readable_document(session, user, id)
            if row is None:
                return None
            (document,) = await _with_places(session, [row])
        return document


@strawberry.type
class DocumentMutation:
    @strawberry.mutation(
        description=(
            "Upload a PDF, CSV or text/Markdown file to a model (GraphQL multipart request). Answers as soon "
            "as the file is stored; ingestion runs in the background (follow it with documentProgress)."
        ),
        extensions=admin_scope(),
    )
    @maps_domain_errors
    async def upload_document(
        self, info: Info, model_id: uuid.UUID, file: Upload, title: str | None = None
    ) -> UploadDocumentResult:
        state = info.context.state
        document = await accept_upload(
            state, info.context.require_user(), file, model_id=model_id, title=title
        )
        async with state.sessionmaker() as session:
            (uploaded,) = await _with_places(session, [document])
        return DocumentUploaded(document=uploaded)

    @strawberry.mutation(
        description="Delete a document: its chunks, its row and its file, together.",
        extensions=admin_scope(),
    )
    @maps_domain_errors
    async def delete_document(self, info: Info, id: uuid.UUID) -> DeleteDocumentResult:
        user = info.context.require_user()
        state = info.context.state
        async with state.sessionmaker.begin() as session:
            row = await service.document_to_change(
                session, user, id, "Only administrators can delete documents."
            )
            event = event_from_row(row, deleted=True)
            outbox_id = await service.delete_document(session, state.settings, row)
        await service.remove_deleted_files(state.sessionmaker, [outbox_id] if outbox_id else [])
        await publish_document_event(state.bus, event)
        return DocumentDeleted(id=id)

    @strawberry.mutation(
        description="Parse, chunk and embed a document again (its chunks are swapped in atomically at the end).",
        extensions=admin_scope(),
    )
    @maps_domain_errors
    async def reindex_document(self, info: Info, id: uuid.UUID) -> ReindexDocumentResult:
        user = info.context.require_user()
        state = info.context.state
        async with state.sessionmaker.begin() as session:
            row = await service.document_to_change(
                session, user, id, "Only administrators can re-index documents."
            )
            service.prepare_reindex(state.settings, row)
            await session.flush()
            await session.refresh(row)
        await enqueue_ingestion(state, row.id)
        await publish_document_event(state.bus, event_from_row(row))
        async with state.sessionmaker() as session:
            (document,) = await _with_places(session, [row])
        return DocumentReindexQueued(document=document)


class _EventWaiter:
    """Waits for the next bus event with a timeout without cancelling the bus iterator
    (cancelling an async generator mid-await would close it for good)."""

    def __init__(self, events: AsyncIterator[Event]) -> None:
        self._events = events
        self._pending: asyncio.Task[Event] | None = None

    async def next(self, timeout: float) -> Event | None:
        """The next event on the channel, or None after `timeout` seconds."""
        if self._pending is None:
            self._pending = asyncio.ensure_future(anext(self._events))
        done, _ = await asyncio.wait({self._pending}, timeout=timeout)
        if not done:
            return None
        task, self._pending = self._pending, None
        return task.result()

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()


DOCUMENT_ACCESS_LOST = "Document not found: it was deleted or you no longer have access to it."
MODEL_ACCESS_LOST = "Model not found: it was deleted or you no longer have access to it."


async def _guarded(
    info: Info, watch: AccessWatch, events: AsyncIterator[DocumentProgress]
) -> AsyncIterator[DocumentProgress]:
    """Relay `events` while the caller's access lasts; then end with the clear error."""
    try:
        async for event in watch.guard(events):
            yield event
    except AccessLost as lost:
        if lost.account:  # later operations on this socket are refused too
            info.context.user = None
            info.context.auth_error = lost.message
        raise lost.as_graphql_error() from None


async def _progress_of(
    state: Any, user: models.User, document_id: uuid.UUID, watch: AccessWatch
) -> AsyncIterator[DocumentProgress]:
    # Subscribe before reading the row, so nothing published in between is lost.
    async with state.bus.subscribe(document_channel(document_id)) as events:
        async with state.sessionmaker() as session:
            row = await repository.get_document(session, document_id)
            if row is None or not await can_read_document(session, user, row):
                raise DocumentNotFound()
        watch.watch_model(row.model_id)
        last = event_from_row(row)
        place = await _place_of(state, last)
        yield DocumentProgress.from_event(last, place)
        waiter = _EventWaiter(events)
        try:
            while not is_final(last):
                queued = last.status is models.DocumentStatus.QUEUED
                received = await waiter.next(QUEUE_POSITION_SECONDS if queued else RESYNC_SECONDS)
                if received is None:
                    async with state.sessionmaker() as session:
                        row = await repository.get_document(session, document_id)
                    event = (
                        event_from_row(row) if row is not None else dataclasses.replace(last, deleted=True)
                    )
                    if not event.deleted and ordering_key(event) <= ordering_key(last):
                        # No step forward; while it waits, its place in the queue may have moved.
                        if not queued or event.status is not models.DocumentStatus.QUEUED:
                            continue
                        moved = await _place_of(state, event)
                        if moved == place:
                            continue
                        place = moved
                        yield DocumentProgress.from_event(last, place)
                        continue
                elif not isinstance(received, DocumentProgressed):
                    continue
                elif not received.deleted and ordering_key(received) < ordering_key(last):
                    continue  # published before the row we started from
                else:
                    event = received
                last = event
                place = await _place_of(state, event)
                yield DocumentProgress.from_event(event, place)
        finally:
            waiter.close()


async def _events_of(state: Any, user: models.User, model_id: uuid.UUID) -> AsyncIterator[DocumentProgress]:
    async with state.bus.subscribe(model_channel(model_id)) as events:
        async with state.sessionmaker() as session:
            if not await can_read_model(session, user, model_id):
                raise ModelNotFound()
            working = await repository.working_documents_of_model(session, model_id)
            places = await repository.documents_ahead_of(session, working)
        # The latest event of each of the model's queued documents, with its place.
        waiting: dict[uuid.UUID, tuple[DocumentProgressed, int | None]] = {}
        for row in working:
            event = event_from_row(row)
            if row.status is models.DocumentStatus.QUEUED:
                waiting[row.id] = (event, places.get(row.id))
            yield DocumentProgress.from_event(event, places.get(row.id))
        waiter = _EventWaiter(events)
        try:
            while True:
                received = await waiter.next(QUEUE_POSITION_SECONDS if waiting else RESYNC_SECONDS)
                if received is None:
                    if not waiting:
                        continue
                    # Every document of a model's channel is a model document: one lane.
                    async with state.sessionmaker() as session:
                        moved = await repository.documents_ahead(
                            session, IngestionLane.MODEL_DOCUMENTS, list(waiting)
                        )
                    for document_id, (event, place) in list(waiting.items()):
                        if document_id not in moved:
                            continue  # no longer queued: its own event says what it is now
                        if moved[document_id] != place:
                            waiting[document_id] = (event, moved[document_id])
                            yield DocumentProgress.from_event(event, moved[document_id])
                    continue
                if not isinstance(received, DocumentProgressed):
                    continue
                place = None
                if received.status is models.DocumentStatus.QUEUED and not received.deleted:
                    place = await _place_of(state, received)
                    waiting[received.document_id] = (received, place)
                else:
                    waiting.pop(received.document_id, None)
                yield DocumentProgress.from_event(received, place)
        finally:
            waiter.close()


@strawberry.type
class DocumentSubscription:
    @strawberry.subscription(
        description=(
            "Progress of one document: first its current state, then each step; ends after READY or FAILED "
            "(or deletion). Readers of its model. Ends with a NOT_FOUND error when you lose access to it "
            "(UNAUTHENTICATED when your account is deactivated or signed out)."
        ),
        extensions=signed_in(),
    )
    async def document_progress(
        self, info: Info, document_id: uuid.UUID
    ) -> AsyncGenerator[DocumentProgress, None]:
        state = info.context.state

        async def still_readable(session: Any, fresh: models.User) -> bool:
            row = await repository.get_document(session, document_id)
            if row is not None:
                return await can_read_document(session, fresh, row)
            # Deleted: the stream itself reports that — unless its model went too (or access to it).
            return all([await can_read_model(session, fresh, model) for model in watch.model_ids])

        async with watch_access(
            state.bus,
            state.sessionmaker,
            info.context.require_user(),
            personal_token=info.context.personal_token,
            check=still_readable,
            lost_message=DOCUMENT_ACCESS_LOST,
        ) as watch:
            user = await info.context.require_current_user()
            progress = _progress_of(state, user, document_id, watch)
            async for event in _guarded(info, watch, progress):
                yield event

    @strawberry.subscription(
        description=(
            "Progress of every document of a model: first the current state of those being processed, then "
            "each step of any document (uploads, progress, deletions). Readers of the model. Ends with a "
            "NOT_FOUND error when the model is deleted or you lose access to it (UNAUTHENTICATED when your "
            "account is deactivated or signed out)."
        ),
        extensions=signed_in(),
    )
    async def document_events(
        self, info: Info, model_id: uuid.UUID
    ) -> AsyncGenerator[DocumentProgress, None]:
        state = info.context.state

        async def still_readable(session: Any, fresh: models.User) -> bool:
            return await can_read_model(session, fresh, model_id)

        async with watch_access(
            state.bus,
            state.sessionmaker,
            info.context.require_user(),
            personal_token=info.context.personal_token,
            check=still_readable,
            lost_message=MODEL_ACCESS_LOST,
            model_ids=(model_id,),
        ) as watch:
            user = await info.context.require_current_user()
            async for event in _guarded(info, watch, _events_of(state, user, model_id)):
                yield event
