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

from gql_server.db.models import Document, DocumentKind, DocumentStatus, PendingFileDeletion
from gql_server.documents import repository
from gql_server.documents.storage import (
    document_relative_path,
    move_into_place,
    remove_file,
    resolve_storage_path,
)
from gql_server.documents.uploads import IncomingFile
from gql_server.settings import Settings

logger = logging.getLogger(__name__)


class DuplicateUpload(Exception):
    def __init__(self, session: AsyncSession, existing: Document) -> None:
        # Detached with its loaded state: the rollback that follows must not expire it.
        session.expunge(existing)
        super().__init__(f"The same file is already in this model as “{existing.filename}”.")
        self.existing = existing


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

    Raises DuplicateUpload when the same bytes are already in the model (or session).
    The move is an os.replace inside files_dir; if the caller's transaction then fails,
    it must remove `stored_path` (see `discard_stored_file`).
    """
    existing = await repository.find_duplicate(session, model_id, chat_session_id, incoming.sha256)
    if existing is not None:
        raise DuplicateUpload(session, existing)
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
            raise DuplicateUpload(session, existing) from None
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


class ReindexRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def prepare_reindex(settings: Settings, document: Document) -> None:
    if document.status.is_working:
        raise ReindexRefused("The document is already being processed.")
    if not document.storage_path or not resolve_storage_path(settings, document.storage_path).exists():
        raise ReindexRefused(
            "The original file was not kept (KEEP_ORIGINAL_FILES is off), so it cannot be re-indexed; "
            "upload it again instead."
        )
    document.status = DocumentStatus.QUEUED
    document.progress = 0.0
    document.error = None
