"""The API's handle on the ingestion queue (`AppState.document_queue`, built by the lifespan).

Two lanes (see workers/ingestion.py for the scheduling rules): model documents, uploaded
by administrators, and chat attachments, uploaded by any user. Each lane has its own
slots, so a pile of one user's attachments never delays a model document, and within the
attachment lane the next document is chosen round-robin over users.
"""

from __future__ import annotations

import enum
import logging
import uuid
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select

from gql_server.db.models import Document

if TYPE_CHECKING:
    from gql_server.state import AppState

logger = logging.getLogger(__name__)


class IngestionLane(enum.StrEnum):
    MODEL_DOCUMENTS = "documents"
    ATTACHMENTS = "attachments"

    @classmethod
    def of(cls, session_id: uuid.UUID | None) -> IngestionLane:
        """A document with a chat session is an attachment."""
        return cls.MODEL_DOCUMENTS if session_id is None else cls.ATTACHMENTS


class DocumentQueue(Protocol):
    async def enqueue_ingestion(self, document_id: uuid.UUID, lane: IngestionLane) -> None: ...


async def enqueue_ingestion(
    state: AppState, document_id: uuid.UUID, lane: IngestionLane | None = None
) -> None:
    """Called after the commit. A failure here leaves the document QUEUED: it is picked up
    by the next ingestion task of its lane, at the next start (embedded) or by
    `reindexDocument`. Without `lane`, the document's row says which lane (one primary-key
    read)."""
    try:
        if lane is None:
            async with state.sessionmaker() as session:
                found = await session.execute(select(Document.session_id).where(Document.id == document_id))
                row = found.one_or_none()
            if row is None:
                return  # deleted meanwhile: nothing to ingest
            lane = IngestionLane.of(row.session_id)
    except Exception:
        logger.exception("could not enqueue document %s; it stays QUEUED", document_id)
        return
    await enqueue_after_commit(state.document_queue, document_id, lane)


async def enqueue_after_commit(queue: DocumentQueue, document_id: uuid.UUID, lane: IngestionLane) -> None:
    """Enqueue a committed document; never raises (see `enqueue_ingestion` for why that is safe)."""
    try:
        await queue.enqueue_ingestion(document_id, lane)
    except Exception:
        logger.exception("could not enqueue document %s; it stays QUEUED", document_id)
