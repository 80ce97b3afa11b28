"""Business rules for documents. Services never commit: the caller's transaction does."""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_server.access.policy import can_manage_models, can_read_model, can_use_chat_session
from gql_server.db.models import Document, DocumentKind, DocumentStatus, PendingFileDeletion, User
from gql_server.documents import repository
from gql_server.documents.access import can_change_document, can_read_document
from gql_server.documents.storage import (
    document_relative_path,
    move_into_place,
    remove_file,
    resolve_storage_path,
)
from gql_server.documents.uploads import IncomingFile
from gql_server.exceptions import (
    DuplicateDocumentError,
    FileTooLargeError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    StorageFullError,
    UnsupportedFileTypeError,
)
from gql_server.settings import Settings

logger = logging.getLogger(__name__)


def _duplicate(session: AsyncSession, existing: Document) -> DuplicateDocumentError:
    # Detached with its loaded state: the rollback that follows must not expire it.
    session.expunge(existing)
    return DuplicateDocumentError(existing)


DOCUMENT_NOT_FOUND = "Document not found."
MODEL_NOT_FOUND = "Model not found."


async def upload_destination(
    session: AsyncSession, user: User, model_id: uuid.UUID, chat_session_id: uuid.UUID | None
) -> uuid.UUID:
    """The model an upload goes to. To a model: its readers see NotFound, and only
    administrators may upload (Forbidden). To a chat session (an attachment): its owner,
    while still allowed to read its model; the session's model is the destination."""
    if chat_session_id is None:
        if not await can_read_model(session, user, model_id):
            raise NotFoundError(MODEL_NOT_FOUND)
        if not can_manage_models(user):
            raise ForbiddenError("Only administrators can upload documents to a model.")
        return model_id
    chat_session = await repository.get_chat_session(session, chat_session_id)
    if chat_session is None or not await can_use_chat_session(session, user, chat_session):
        raise NotFoundError("Chat session not found.")
    return chat_session.model_id


def check_incoming(settings: Settings, incoming: object) -> IncomingFile:
    """The upload as our multipart parser stored it, or why it cannot be accepted."""
    if not isinstance(incoming, IncomingFile):
        raise InvalidInputError.of("file", "Send the file as a GraphQL multipart upload.")
    if incoming.too_large:
        raise FileTooLargeError(
            f"The file is larger than the upload limit of {settings.max_upload_mb} MB.", incoming.max_bytes
        )
    if incoming.storage_full:
        raise StorageFullError()
    if incoming.size == 0:
        raise UnsupportedFileTypeError("The file is empty.")
    return incoming


async def readable_document(session: AsyncSession, user: User, document_id: uuid.UUID) -> Document | None:
    """The document, or None when it does not exist or `user` may not see it."""
    row = await repository.get_document(session, document_id)
    if row is None or not await can_read_document(session, user, row):
        return None
    return row


async def document_to_change(
    session: AsyncSession, user: User, document_id: uuid.UUID, refusal: str
) -> Document:
    """The document locked for a delete or re-index; NotFound for those who may not see
    it, Forbidden (`refusal`) for readers who may not change it."""
    row = await repository.get_document(session, document_id, for_update=True)
    if row is None or not await can_read_document(session, user, row):
        raise NotFoundError(DOCUMENT_NOT_FOUND)
    if not await can_change_document(session, user, row):
        raise ForbiddenError(refusal)
    return row


async def list_model_documents(
    session: AsyncSession,
    user: User,
    model_id: uuid.UUID,
    *,
    status: DocumentStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[Document], int]:
    """A page of a model's documents (not chat attachments), for the model's readers."""
    if not await can_read_model(session, user, model_id):
        raise NotFoundError(MODEL_NOT_FOUND)
    rows, total = await repository.list_model_documents(
        session, model_id, status=status, first=limit, offset=offset
    )
    return list(rows), total


def title_from_filename(filename: str) -> str:
    from gql_server.rag.citations import title_from_filename as clean_title

    return clean_title(filename)


@dataclass
class NewDocument:
    document: Document
    stored_path: Path


async def create_document_from_upload(
    session: AsyncSession,
    settings: Settings,
    *,
    model_id: uuid.UUID,
    chat_session_id: uuid.UUID | None,
    uploaded_by_id: uuid.UUID | None,
    incoming: IncomingFile,
    kind: DocumentKind,
    title: str | None = None,
) -> NewDocument:
    """Insert the document row and move the uploaded file into its final place.

    Raises DuplicateDocumentError when the same bytes are already in the model (or session).
    The move is an os.replace inside files_dir; if the caller's transaction then fails,
    it must remove `stored_path` (see `discard_stored_file`).
    """
    existing = await repository.find_duplicate(session, model_id, chat_session_id, incoming.sha256)
    if existing is not None:
        raise _duplicate(session, existing)
    document_id = uuid.uuid4()
    relative = document_relative_path(document_id, kind.value)
    document = Document(
        id=document_id,
        model_id=model_id,
        session_id=chat_session_id,
        filename=incoming.filename,
        title=(title or "").strip()[:500] or title_from_filename(incoming.filename),
        kind=kind,
        size_bytes=incoming.size,
        sha256=incoming.sha256,
        status=DocumentStatus.QUEUED,
        progress=0.0,
        chunk_count=0,
        warnings=[],
        storage_path=relative,
        file_kept=settings.keep_original_files,
        uploaded_by_id=uploaded_by_id,
        attempts=0,
    )
    try:
        async with session.begin_nested():
            session.add(document)
            await session.flush()
    except IntegrityError:
        # A concurrent upload of the same bytes won the race for the unique index (the
        # INSERT waited for the winner's commit). The savepoint is rolled back, but the row
        # object must leave the session too: left pending, the next query's autoflush would
        # INSERT it again outside the savepoint and kill the whole transaction (4 of 8
        # racing rounds answered INTERNAL_SERVER_ERROR that way). The file stays in
        # incoming/, where the view discards it after the response.
        if document in session:
            session.expunge(document)
        with session.no_autoflush:
            existing = await repository.find_duplicate(session, model_id, chat_session_id, incoming.sha256)
        if existing is not None:
            raise _duplicate(session, existing) from None
        raise
    stored = move_into_place(incoming.path, settings, relative)
    incoming.consumed = True
    return NewDocument(document=document, stored_path=stored)


def discard_stored_file(new: NewDocument | None) -> None:
    if new is not None:
        remove_file(new.stored_path)


async def delete_document(session: AsyncSession, settings: Settings, document: Document) -> int | None:
    """Delete chunks and row; queue the file for removal in the same transaction.

    Returns the outbox row id, to remove the file right after the commit.
    """
    outbox_id: int | None = None
    if document.storage_path:
        with contextlib.suppress(ValueError):
            path = resolve_storage_path(settings, document.storage_path)
            pending = PendingFileDeletion(path=str(path))
            session.add(pending)
            await session.flush()
            outbox_id = pending.id
    await repository.delete_chunks(session, document)
    await session.delete(document)
    await session.flush()
    return outbox_id


async def remove_deleted_files(sessionmaker: async_sessionmaker[AsyncSession], outbox_ids: list[int]) -> None:
    """After the commit: remove the files the outbox lists (the sweeper retries any leftovers)."""
    if not outbox_ids:
        return
    try:
        from gql_server.storage import file_sweeper
    except ImportError:
        file_sweeper = None  # type: ignore[assignment]
    if file_sweeper is not None:
        await file_sweeper.sweep_pending_file_deletions(sessionmaker)
        return
    async with sessionmaker.begin() as session:
        rows = (
            await session.execute(select(PendingFileDeletion).where(PendingFileDeletion.id.in_(outbox_ids)))
        ).scalars()
        for row in rows:
            remove_file(Path(row.path))
        await session.execute(delete(PendingFileDeletion).where(PendingFileDeletion.id.in_(outbox_ids)))


def prepare_reindex(settings: Settings, document: Document) -> None:
    if document.status.is_working:
        raise InvalidInputError.of("id", "The document is already being processed.")
    if not document.storage_path or not resolve_storage_path(settings, document.storage_path).exists():
        raise InvalidInputError.of(
            "id",
            "The original file was not kept (KEEP_ORIGINAL_FILES is off), so it cannot be re-indexed; "
            "upload it again instead.",
        )
    document.status = DocumentStatus.QUEUED
    document.progress = 0.0
    document.error = None
