"""The API's handle on the ingestion queue (set by the workers' lifespan hook)."""

from __future__ import annotations

import logging
import uuid
from typing import Protocol

from gql_server.state import AppState

logger = logging.getLogger(__name__)

QUEUE_EXTRA = "document_queue"


class DocumentQueue(Protocol):
    async def enqueue_ingestion(self, document_id: uuid.UUID) -> None: ...


async def enqueue_ingestion(state: AppState, document_id: uuid.UUID) -> None:
    """Called after the commit. A failure here leaves the document QUEUED: it is picked up
    again at the next start (embedded) or by `reindexDocument`."""
    queue: DocumentQueue | None = state.extras.get(QUEUE_EXTRA)
    if queue is None:
        logger.error("no ingestion queue is configured; document %s stays QUEUED", document_id)
        return
    try:
        await queue.enqueue_ingestion(document_id)
    except Exception:
        logger.exception("could not enqueue document %s; it stays QUEUED", document_id)
