"""Files attached in a chat: ingested like any document, visible only in that session.

The upload goes through the documents domain's own path (`documents/acceptance.py`
`accept_document` with a chat session id): the same streaming multipart parser, type
sniffing, storage, duplicate check and ingestion task with progress events (follow it
with `documentProgress`). The
document and its chunks carry the session id, so retrieval offers them only to this
session's questions, and deleting the session deletes them with their files.

Quota: a user's attachments (every file in their chat sessions, whatever its status) may
total ATTACHMENT_QUOTA_MB_PER_USER. The check runs in the transaction that inserts the
row, after locking the user's row (FOR NO KEY UPDATE): two attachments of one user sent at
once are counted one after the other, so they cannot both slip under the limit. A refused
file is not stored (the upload's temporary file is discarded after the answer). Model
documents do not count. Attachments are ingested in their own lane, round-robin over
users (workers/ingestion.py `ingest_next`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.chat import repository
from gql_server.chat.types import AttachFileResult, StorageQuotaExceeded
from gql_server.context import Info
from gql_server.documents import repository as documents_repository
from gql_server.documents import service as documents_service
from gql_server.documents.acceptance import accept_document
from gql_server.documents.types import Document, DocumentUploaded
from gql_server.documents.uploads import IncomingFile
from gql_server.errors import InvalidInput, NotFound, maps_domain_errors

MB = 1024 * 1024


class AttachmentQuotaExceeded(Exception):
    def __init__(self, limit_bytes: int, used_bytes: int, file_bytes: int) -> None:
        super().__init__(
            f"Your chat attachments use {_mb(used_bytes)} of your {_mb(limit_bytes)}; this file "
            f"({_mb(file_bytes)}) would go over it. Delete chats with attachments you no longer need."
        )
        self.limit_bytes = limit_bytes
        self.used_bytes = used_bytes


def _mb(size: int) -> str:
    return f"{size / MB:.1f}".removesuffix(".0") + " MB"


async def check_attachment_quota(
    session: AsyncSession, user_id: uuid.UUID, limit_bytes: int, incoming: IncomingFile
) -> None:
    """Raises AttachmentQuotaExceeded; call inside the transaction that inserts the row."""
    await documents_repository.lock_user_for_attachments(session, user_id)
    used = await documents_repository.attachment_bytes_of_user(session, user_id)
    if used + incoming.size > limit_bytes:
        raise AttachmentQuotaExceeded(limit_bytes, used, incoming.size)


@maps_domain_errors
async def attach_file(
    info: Info, chat_session_id: uuid.UUID, file: Any, title: str | None = None
) -> AttachFileResult:
    user = await info.context.require_current_user()
    state = info.context.state
    async with state.sessionmaker() as session:
        chat_session = await repository.get_owned_session(session, user.id, chat_session_id)
    if chat_session is None:
        return NotFound(message="Chat session not found.")
    if not chat_session.is_active:
        return InvalidInput.of(
            "sessionId", "This chat has ended because a newer one was started. Continue this chat first."
        )
    limit_bytes = state.settings.attachment_quota_mb_per_user * MB

    async def admit(session: AsyncSession, incoming: IncomingFile) -> None:
        await check_attachment_quota(session, user.id, limit_bytes, incoming)

    # The same check as every upload: the caller owns the session and may read its model.
    async with state.sessionmaker() as session:
        model_id = await documents_service.upload_destination(
            session, user, chat_session.model_id, chat_session.id
        )
    try:
        document = await accept_document(
            settings=state.settings,
            sessionmaker=state.sessionmaker,
            bus=state.bus,
            queue=state.document_queue,
            incoming=documents_service.check_incoming(state.settings, file),
            model_id=model_id,
            chat_session_id=chat_session.id,
            uploaded_by_id=user.id,
            title=title,
            admit=admit,
        )
    except AttachmentQuotaExceeded as refused:
        return StorageQuotaExceeded(
            message=str(refused), limit_bytes=float(refused.limit_bytes), used_bytes=float(refused.used_bytes)
        )
    return DocumentUploaded(document=Document.from_row(document))
