"""GraphQL types of the documents domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry

from gql_server.context import Info
from gql_server.db import models
from gql_server.errors import Error, Forbidden, InvalidInput, NotFound
from gql_server.events.kinds import DocumentProgressed
from gql_server.kit.page import Page

DocumentStatus = strawberry.enum(
    models.DocumentStatus,
    name="DocumentStatus",
    description="Where a document is on its way to being searchable.",
)
DocumentKind = strawberry.enum(
    models.DocumentKind, name="DocumentKind", description="What the file was sniffed as."
)

DOCUMENTS_AHEAD = (
    "QUEUED documents only: how many documents of its queue will be ingested before it (those being "
    "ingested now and those queued ahead of it, counted over every process of this server). Null when "
    "it is not queued. Only a number: which documents they are is not told."
)


@strawberry.type(description="A file in a model (or attached to a chat), with its ingestion state.")
class Document:
    id: uuid.UUID
    model_id: uuid.UUID
    session_id: uuid.UUID | None
    filename: str
    title: str
    kind: DocumentKind  # type: ignore[valid-type]
    status: DocumentStatus  # type: ignore[valid-type]
    progress: float = strawberry.field(description="0 to 1.")
    size_bytes: float = strawberry.field(
        description="Size of the upload in bytes (a Float: it may exceed 2^31)."
    )
    sha256: str
    page_count: int | None
    row_count: int | None
    chunk_count: int = strawberry.field(
        description="Chunks (passages) of the document. While it is queued or being ingested, a running total "
        "of this run so far (see chunkCountFinal); once READY, the final count; once FAILED, the chunks that "
        "are searchable."
    )
    chunk_count_final: bool = strawberry.field(
        description="False while the document is queued or being ingested: chunkCount is then a running total."
    )
    documents_ahead: int | None = strawberry.field(description=DOCUMENTS_AHEAD)
    error: str | None = strawberry.field(description="Why ingestion failed, in words a person can act on.")
    warnings: list[str]
    file_kept: bool = strawberry.field(
        description="The original is kept (KEEP_ORIGINAL_FILES) and can be downloaded."
    )
    attempts: int
    created_at: datetime
    updated_at: datetime
    processed_at: datetime | None

    @strawberry.field(
        description="A short-lived link to the original (Range-capable), signed for you; null when not kept."
    )
    def download_url(self, info: Info) -> str | None:
        from gql_server.documents.downloads import download_url

        user = info.context.user
        if not self.file_kept or user is None:
            return None
        return download_url(info.context.state.settings.jwt_secret, self.id, user)

    @classmethod
    def from_row(cls, row: models.Document, documents_ahead: int | None = None) -> Document:
        """`documents_ahead`: the row's place in its queue (repository.documents_ahead), when QUEUED."""
        return cls(
            id=row.id,
            model_id=row.model_id,
            session_id=row.session_id,
            filename=row.filename,
            title=row.title,
            kind=row.kind,
            status=row.status,
            progress=float(row.progress or 0.0),
            size_bytes=float(row.size_bytes),
            sha256=row.sha256,
            page_count=row.page_count,
            row_count=row.row_count,
            chunk_count=row.chunk_count,
            chunk_count_final=not row.status.is_working,
            documents_ahead=documents_ahead if row.status is models.DocumentStatus.QUEUED else None,
            error=row.error,
            warnings=list(row.warnings or []),
            file_kept=bool(row.file_kept and row.storage_path),
            attempts=row.attempts,
            created_at=row.created_at,
            updated_at=row.updated_at,
            processed_at=row.processed_at,
        )


@strawberry.type(description="One step of a document's ingestion, as delivered by the subscriptions.")
class DocumentProgress:
    document_id: uuid.UUID
    model_id: uuid.UUID
    status: DocumentStatus  # type: ignore[valid-type]
    progress: float = strawberry.field(description="0 to 1.")
    percent: int
    pages_done: int | None
    page_count: int | None
    chunk_count: int = strawberry.field(
        description="Chunks so far: a running total while the document is queued or being ingested "
        "(chunkCountFinal false), the final count once READY."
    )
    chunk_count_final: bool = strawberry.field(
        description="True once READY or FAILED: chunkCount no longer changes."
    )
    documents_ahead: int | None = strawberry.field(description=DOCUMENTS_AHEAD)
    elapsed_seconds: float | None
    eta_seconds: float | None = strawberry.field(
        description="Estimated seconds until READY, from this server's measured speed: its recent ingestions "
        "of this kind of document and this document's own pace so far. Null until it can be told (while "
        "queued, and early in a document of a kind this server has not ingested yet); 0 once finished."
    )
    error: str | None
    warnings: list[str]
    deleted: bool = strawberry.field(description="The document was deleted; no more events follow for it.")

    @classmethod
    def from_event(cls, event: DocumentProgressed, documents_ahead: int | None = None) -> DocumentProgress:
        """`documents_ahead`: the document's place in its queue, when the event says QUEUED."""
        return cls(
            document_id=event.document_id,
            model_id=event.model_id,
            status=event.status,
            progress=event.progress,
            percent=int(event.progress * 100),
            pages_done=event.pages_done,
            page_count=event.page_count,
            chunk_count=event.chunk_count,
            chunk_count_final=not event.status.is_working and not event.deleted,
            documents_ahead=documents_ahead if event.status is models.DocumentStatus.QUEUED else None,
            elapsed_seconds=event.elapsed_seconds,
            eta_seconds=event.eta_seconds,
            error=event.error,
            warnings=list(event.warnings),
            deleted=event.deleted,
        )


@strawberry.type(description="The file was stored and queued for ingestion; follow it with documentProgress.")
class DocumentUploaded:
    document: Document


@strawberry.type(description="The same file (by sha256) is already in this model.")
class DuplicateDocument(Error):
    existing: Document


@strawberry.type(
    description="The file is not a PDF, CSV or text/Markdown document (decided from its content)."
)
class UnsupportedFileType(Error):
    pass


@strawberry.type(description="The file is larger than MAX_UPLOAD_MB.")
class FileTooLarge(Error):
    max_bytes: float


@strawberry.type(
    description="The server's disk (or its quota) is full: nothing of the file was kept. "
    "Try again once an administrator has freed space."
)
class StorageFull(Error):
    pass


@strawberry.type
class DocumentDeleted:
    id: uuid.UUID


@strawberry.type(description="The document was queued to be parsed, chunked and embedded again.")
class DocumentReindexQueued:
    document: Document


UploadDocumentResult = Annotated[
    DocumentUploaded
    | NotFound
    | Forbidden
    | DuplicateDocument
    | UnsupportedFileType
    | FileTooLarge
    | InvalidInput
    | StorageFull,
    strawberry.union("UploadDocumentResult"),
]
DeleteDocumentResult = Annotated[
    DocumentDeleted | NotFound | Forbidden, strawberry.union("DeleteDocumentResult")
]
ReindexDocumentResult = Annotated[
    DocumentReindexQueued | NotFound | Forbidden | InvalidInput, strawberry.union("ReindexDocumentResult")
]
DocumentListResult = Annotated[Page[Document] | NotFound, strawberry.union("DocumentListResult")]
