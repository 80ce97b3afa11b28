"""Document progress events: what the ingestion task publishes and subscriptions deliver.

An event is a `DocumentProgressed` (`gql_server/events/kinds.py`) built from the document
row or from the running task's tracker. Channels: one per model (admin dashboards list every
document of a model) and one per document. Documents attached to a chat session are
published on their document channel only, never on the model's.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from gql_server.db.models import Document, DocumentStatus
from gql_server.events.bus import EventBus
from gql_server.events.kinds import DocumentProgressed

STAGE_ORDER = {
    DocumentStatus.QUEUED: 0,
    DocumentStatus.PARSING: 1,
    DocumentStatus.CHUNKING: 2,
    DocumentStatus.EMBEDDING: 3,
    DocumentStatus.STORING: 4,
    DocumentStatus.READY: 5,
    DocumentStatus.FAILED: 5,
}
FINAL_STATUSES = frozenset({DocumentStatus.READY, DocumentStatus.FAILED})


def model_channel(model_id: uuid.UUID | str) -> str:
    return f"documents:model:{model_id}"


def document_channel(document_id: uuid.UUID | str) -> str:
    return f"documents:document:{document_id}"


def event_from_row(document: Document, *, deleted: bool = False) -> DocumentProgressed:
    elapsed: float | None = None
    if document.processing_started_at is not None:
        end = document.processed_at if not document.status.is_working and document.processed_at else None
        end_time = end or datetime.now(UTC)
        elapsed = max(0.0, (end_time - document.processing_started_at).total_seconds())
    return DocumentProgressed(
        document_id=document.id,
        model_id=document.model_id,
        session_id=document.session_id,
        status=document.status,
        progress=float(document.progress or 0.0),
        pages_done=document.page_count if not document.status.is_working else None,
        page_count=document.page_count,
        chunk_count=document.chunk_count or 0,
        elapsed_seconds=elapsed,
        eta_seconds=0.0 if not document.status.is_working else None,
        error=document.error,
        warnings=tuple(document.warnings or ()),
        attempt=document.attempts or 0,
        deleted=deleted,
        at=time.time(),
    )


def ordering_key(event: DocumentProgressed) -> tuple[int, int, float]:
    """Events of one document never go backwards: (attempt, stage, progress)."""
    return (event.attempt, STAGE_ORDER[event.status], event.progress)


def is_final(event: DocumentProgressed) -> bool:
    return event.deleted or event.status in FINAL_STATUSES


async def publish_document_event(bus: EventBus, event: DocumentProgressed) -> None:
    await bus.publish(document_channel(event.document_id), event)
    if event.session_id is None:
        await bus.publish(model_channel(event.model_id), event)
