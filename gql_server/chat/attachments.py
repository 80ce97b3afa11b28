"""Files attached in a chat: ingested like any document, visible only in that session.

The upload goes through the documents domain's own path (`upload_document` with a chat
session id): the same streaming multipart parser, type sniffing, storage, duplicate
check and ingestion task with progress events (follow it with `documentProgress`). The
document and its chunks carry the session id, so retrieval offers them only to this
session's questions, and deleting the session deletes them with their files.
"""

from __future__ import annotations

import uuid
from typing import Any

from gql_server.chat import repository
from gql_server.context import Info
from gql_server.documents.resolvers import upload_document
from gql_server.documents.types import UploadDocumentResult
from gql_server.errors import InvalidInput, NotFound


async def attach_file(
    info: Info, chat_session_id: uuid.UUID, file: Any, title: str | None = None
) -> UploadDocumentResult:
    user = await info.context.require_current_user()
    async with info.context.sessionmaker() as session:
        chat_session = await repository.get_owned_session(session, user.id, chat_session_id)
    if chat_session is None:
        return NotFound(message="Chat session not found.")
    if not chat_session.is_active:
        return InvalidInput.of("sessionId", "This chat has ended; attach files in the newer chat.")
    # upload_document re-checks that the caller owns the session and may read its model.
    return await upload_document(
        info, chat_session.model_id, file, title=title, chat_session_id=chat_session.id
    )
