"""Files attached in a chat: ingested like any document, visible only in that session.

The upload goes through the documents domain's own path (`documents/acceptance.py`
`accept_upload` with a chat session id): the same streaming multipart parser, type
sniffing, storage, duplicate check and ingestion task with progress events (follow it with
`documentProgress`). The document and its chunks carry the session id, so retrieval offers
them only to this session's questions, and deleting the session deletes them with their
files.

Quota: a user's attachments (every file in their chat sessions, whatever its status) may
total ATTACHMENT_QUOTA_MB_PER_USER. The check runs in the transaction that inserts the
row, after locking the user's row (FOR NO KEY UPDATE): two attachments of one user sent at
once are counted one after the other, so they cannot both slip under the limit. A refused
file (`AttachmentQuotaExceededError`, StorageQuotaExceeded to the client) is not stored
(the upload's temporary file is discarded after the answer). Model documents do not count.
Attachments are ingested in their own lane, round-robin over users (workers/ingestion.py
`ingest_next`).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.chat import repository
from gql_server.db.models import Document, User
from gql_server.documents import repository as documents_repository
from gql_server.documents.acceptance import accept_upload
from gql_server.documents.uploads import IncomingFile
from gql_server.exceptions import AttachmentQuotaExceededError, InvalidInputError, NotFoundError
from gql_server.state import AppState

MB = 1024 * 1024


async def attach_file(
    state: AppState, user: User, chat_session_id: uuid.UUID, file: object, title: str | None = None
) -> Document:
    """Accept `file` as an attachment of the user's chat session; returns the document row.

    NotFoundError for a session that is not the user's, InvalidInputError for an ended one,
    AttachmentQuotaExceededError over the quota, and whatever an upload can be refused with."""
    async with state.sessionmaker() as session:
        chat_session = await repository.get_owned_session(session, user.id, chat_session_id)
    if chat_session is None:
        raise NotFoundError("Chat session not found.")
    if not chat_session.is_active:
        raise InvalidInputError.of(
            "sessionId", "This chat has ended because a newer one was started. Continue this chat first."
        )
    limit_bytes = state.settings.attachment_quota_mb_per_user * MB

    async def admit(session: AsyncSession, incoming: IncomingFile) -> None:
        await check_attachment_quota(session, user.id, limit_bytes, incoming)

    # The same check as every upload: the caller owns the session and may read its model.
    return await accept_upload(
        state,
        user,
        file,
        model_id=chat_session.model_id,
        chat_session_id=chat_session.id,
        title=title,
        admit=admit,
    )


async def check_attachment_quota(
    session: AsyncSession, user_id: uuid.UUID, limit_bytes: int, incoming: IncomingFile
) -> None:
    """Raises AttachmentQuotaExceededError; call inside the transaction that inserts the row."""
    await documents_repository.lock_user_for_attachments(session, user_id)
    used = await documents_repository.attachment_bytes_of_user(session, user_id)
    if used + incoming.size > limit_bytes:
        raise AttachmentQuotaExceededError(limit_bytes, used, incoming.size)
