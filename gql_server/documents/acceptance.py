"""Accepting a document: the one path every new document takes.

Used by the upload mutation (documents/resolvers.py) and chat attachments
(chat/attachments.py) through `accept_upload`, and by `ragql ingest` (workers/ingest_cli.py),
so the three cannot drift apart:

1. sniff the kind from the bytes (never from the name or the client's content type);
2. in one transaction: the caller's `admit` check (the attachment quota), the duplicate
   check, the row (QUEUED), the file moved from incoming/ into files_dir;
3. after the commit: the ingestion task is enqueued and the QUEUED event published.

A failure before the commit leaves nothing behind (the moved file is removed again); a
failed enqueue leaves the row QUEUED (see documents/queue.py). Who may upload where is the
caller's question (`accept_upload` asks `service.upload_destination` for the API; the
CLI checks for an administrator). Refusals are domain errors (gql_server/exceptions.py); nothing here knows
about GraphQL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_server.db.models import Document, DocumentKind, User
from gql_server.documents import service
from gql_server.documents.progress import event_from_row, publish_document_event
from gql_server.documents.queue import DocumentQueue, IngestionLane, enqueue_after_commit
from gql_server.documents.uploads import IncomingFile
from gql_server.events.bus import EventBus
from gql_server.exceptions import UnsupportedFileTypeError
from gql_server.settings import Settings

if TYPE_CHECKING:
    from gql_server.state import AppState

# Runs inside the inserting transaction, before the row; raising refuses the file.
Admission = Callable[[AsyncSession, IncomingFile], Awaitable[None]]


async def sniff_kind(incoming: IncomingFile) -> DocumentKind:
    """The document kind from the file's content (in a thread: it reads the file);
    UnsupportedFileTypeError with the sniffer's reason otherwise."""
    # The sniffer is part of the pipeline library (pure: no database, no network).
    from workers.pipeline.errors import UnsupportedDocument
    from workers.pipeline.sniff import sniff_document_type

    try:
        kind = await asyncio.to_thread(sniff_document_type, incoming.path, incoming.filename)
    except UnsupportedDocument as refused:
        raise UnsupportedFileTypeError(f"{refused.reason}.".replace("..", ".")) from None
    return kind


async def accept_document(
    *,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    queue: DocumentQueue | None,
    incoming: IncomingFile,
    model_id: uuid.UUID,
    chat_session_id: uuid.UUID | None,
    uploaded_by_id: uuid.UUID | None,
    title: str | None = None,
    admit: Admission | None = None,
) -> Document:
    """Sniff, store, insert and (after the commit) enqueue one document; returns its row.

    `queue` None: the caller ingests the document itself, in this process (`ragql ingest`).
    Raises UnsupportedFileTypeError, DuplicateDocumentError, or whatever `admit` raises.
    """
    kind = await sniff_kind(incoming)
    new: service.NewDocument | None = None
    try:
        async with sessionmaker.begin() as session:
            if admit is not None:
                await admit(session, incoming)
            new = await service.create_document_from_upload(
                session,
                settings,
                model_id=model_id,
                chat_session_id=chat_session_id,
                uploaded_by_id=uploaded_by_id,
                incoming=incoming,
                kind=kind,
                title=title,
            )
    except BaseException:
        service.discard_stored_file(new)
        raise
    document = new.document
    if queue is not None:
        await enqueue_after_commit(queue, document.id, IngestionLane.of(chat_session_id))
    await publish_document_event(bus, event_from_row(document))
    return document


async def accept_upload(
    state: AppState,
    user: User,
    file: object,
    *,
    model_id: uuid.UUID,
    chat_session_id: uuid.UUID | None = None,
    title: str | None = None,
    admit: Admission | None = None,
) -> Document:
    """An upload through the API (the upload mutation, a chat attachment): who may upload
    where (`service.upload_destination`: NotFoundError, ForbiddenError), the file as the
    multipart parser stored it (`service.check_incoming`), then `accept_document`."""
    async with state.sessionmaker() as session:
        destination = await service.upload_destination(session, user, model_id, chat_session_id)
    return await accept_document(
        settings=state.settings,
        sessionmaker=state.sessionmaker,
        bus=state.bus,
        queue=state.document_queue,
        incoming=service.check_incoming(state.settings, file),
        model_id=destination,
        chat_session_id=chat_session_id,
        uploaded_by_id=user.id,
        title=title,
        admit=admit,
    )
