"""Document progress events: what the ingestion task publishes and subscriptions deliver.

An event is a JSON-able dict (it crosses Redis pub/sub) built from the document row or
from the running task's tracker. Channels: one per model (admin dashboards list every
document of a model) and one per document. Documents attached to a chat session are
published on their document channel only, never on the model's.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from gql_server.db.models import Document, DocumentStatus
from gql_server.events.bus import EventBus

Event = dict[str, Any]

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


def event_from_row(document: Document, *, deleted: bool = False) -> Event:
    elapsed: float | None = None
    if document.processing_started_at is not None:
        end = document.processed_at if not document.status.is_working and document.processed_at else None
        end_time = end or datetime.now(UTC)
        elapsed = max(0.0, (end_time - document.processing_started_at).total_seconds())
    return {
        "documentId": str(document.id),
        "modelId": str(document.model_id),
        "sessionId": str(document.session_id) if document.session_id else None,
        "status": document.status.value,
        "progress": float(document.progress or 0.0),
        "pagesDone": document.page_count if not document.status.is_working else None,
        "pageCount": document.page_count,
        "chunkCount": document.chunk_count,
        "elapsedSeconds": elapsed,
        "etaSeconds": 0.0 if not document.status.is_working else None,
        "error": document.error,
        "warnings": list(document.warnings or []),
        "attempt": document.attempts,
        "deleted": deleted,
        "at": time.time(),
    }


def ordering_key(event: Event) -> tuple[int, int, float]:
    """Events of one document never go backwards: (attempt, stage, progress)."""
    status = DocumentStatus(event["status"])
    return (int(event.get("attempt") or 0), STAGE_ORDER[status], float(event.get("progress") or 0.0))


def is_final(event: Event) -> bool:
    return bool(event.get("deleted")) or DocumentStatus(event["status"]) in FINAL_STATUSES


async def publish_document_event(bus: EventBus, event: Event) -> None:
    await bus.publish(document_channel(event["documentId"]), event)
    if event.get("sessionId") is None:
        await bus.publish(model_channel(event["modelId"]), event)
