"""All SQL of the documents domain."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.db.models import (
    ChatSession,
    Document,
    DocumentChunk,
    DocumentKind,
    DocumentStatus,
    RagModel,
    User,
)
from gql_server.documents.queue import IngestionLane


async def get_document(
    session: AsyncSession, document_id: uuid.UUID, *, for_update: bool = False
) -> Document | None:
    query = select(Document).where(Document.id == document_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_model(session: AsyncSession, model_id: uuid.UUID) -> RagModel | None:
    return await session.get(RagModel, model_id)


async def get_chat_session(session: AsyncSession, session_id: uuid.UUID) -> ChatSession | None:
    return await session.get(ChatSession, session_id)


async def find_duplicate(
    session: AsyncSession, model_id: uuid.UUID, session_id: uuid.UUID | None, sha256: str
) -> Document | None:
    query = select(Document).where(Document.sha256 == sha256)
    if session_id is None:
        query = query.where(Document.model_id == model_id, Document.session_id.is_(None))
    else:
        query = query.where(Document.session_id == session_id)
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def list_model_documents(
    session: AsyncSession,
    model_id: uuid.UUID,
    *,
    status: DocumentStatus | None,
    first: int,
    offset: int,
) -> tuple[list[Document], int]:
    condition = [Document.model_id == model_id, Document.session_id.is_(None)]
    if status is not None:
        condition.append(Document.status == status)
    total = await session.scalar(select(func.count()).select_from(Document).where(*condition))
    rows = (
        await session.execute(
            select(Document)
            .where(*condition)
            .order_by(Document.created_at.desc(), Document.id)
            .limit(first)
            .offset(offset)
        )
    ).scalars()
    return list(rows), int(total or 0)


async def working_documents_of_model(session: AsyncSession, model_id: uuid.UUID) -> list[Document]:
    working = [s for s in DocumentStatus if s.is_working]
    query = select(Document).where(
        Document.model_id == model_id, Document.session_id.is_(None), Document.status.in_(working)
    )
    return list((await session.execute(query.order_by(Document.created_at))).scalars())


async def working_document_ids(session: AsyncSession) -> list[uuid.UUID]:
    working = [s for s in DocumentStatus if s.is_working]
    query = select(Document.id).where(Document.status.in_(working)).order_by(Document.created_at)
    return list((await session.execute(query)).scalars())


async def delete_chunks(session: AsyncSession, document: Document) -> None:
    # model_id prunes the statement to the model's chunk partition.
    await session.execute(
        delete(DocumentChunk).where(
            DocumentChunk.model_id == document.model_id, DocumentChunk.document_id == document.id
        )
    )


async def lock_user_for_attachments(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Serialise one user's attachment uploads until the caller's transaction ends.
    FOR NO KEY UPDATE: rows that merely reference the user (their FK check takes KEY
    SHARE) are not held up."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


async def attachment_bytes_of_user(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Bytes of every file attached in the user's chat sessions, whatever its status."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Document.size_bytes), 0))
        .join(ChatSession, ChatSession.id == Document.session_id)
        .where(ChatSession.user_id == user_id)
    )
    return int(total or 0)


# --- the ingestion lanes' order (workers/ingestion.py `ingest_next`) -------------------
# Each lane's waiting and running documents with their `ordinal`: the order in which the
# lane's tasks take them. One definition, read by the tasks (which document next) and by
# the API (how many documents are ahead of a queued one), so both always agree.

_WORKING_STATUSES = [status.value for status in DocumentStatus if status.is_working]

# Model documents: oldest first.
_MODEL_LANE = """
    SELECT id, status, row_number() OVER (ORDER BY created_at, id) AS ordinal
    FROM documents
    WHERE session_id IS NULL AND status::text = ANY(:working)
"""
# Attachments: round-robin over their owners. An owner's place in the ring is the later of
# when they were last served (their latest finished attachment) and when their oldest
# waiting one arrived; owners with an attachment being ingested go last. Within an owner,
# oldest first.
_ATTACHMENT_LANE = """
    WITH waiting AS (
        SELECT d.id, d.created_at, d.status, s.user_id
        FROM documents d JOIN chat_sessions s ON s.id = d.session_id
        WHERE d.session_id IS NOT NULL AND d.status::text = ANY(:working)
    ),
    owners AS (
        SELECT w.user_id,
               bool_or(w.status <> 'QUEUED') AS busy,
               greatest(
                   min(w.created_at),
                   coalesce(
                       (SELECT max(d.processed_at)
                        FROM documents d JOIN chat_sessions s ON s.id = d.session_id
                        WHERE s.user_id = w.user_id),
                       '-infinity'
                   )
               ) AS turn
        FROM waiting w GROUP BY w.user_id
    )
    SELECT w.id, w.status,
           row_number() OVER (ORDER BY o.busy, o.turn, o.user_id, w.created_at, w.id) AS ordinal
    FROM waiting w JOIN owners o ON o.user_id = w.user_id
"""


def _lane_sql(lane: IngestionLane) -> str:
    return _MODEL_LANE if lane is IngestionLane.MODEL_DOCUMENTS else _ATTACHMENT_LANE


async def lane_candidates(
    session: AsyncSession, lane: IngestionLane, *, limit: int, offset: int
) -> list[uuid.UUID]:
    """The lane's working documents in the order its tasks take them."""
    query = text(f"SELECT id FROM ({_lane_sql(lane)}) lane ORDER BY ordinal LIMIT :limit OFFSET :offset")
    found = await session.execute(query, {"working": _WORKING_STATUSES, "limit": limit, "offset": offset})
    return list(found.scalars())


async def documents_ahead(
    session: AsyncSession, lane: IngestionLane, document_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """For each of `document_ids` that is QUEUED in `lane`: how many documents of the lane
    will be taken before it — those being ingested now (wherever: the rows are shared by
    every process) plus the queued ones ahead of it in the lane's order. Counted from the
    rows, so it is right across API processes and workers."""
    if not document_ids:
        return {}
    query = text(
        f"""
        WITH lane AS ({_lane_sql(lane)}),
        counted AS (
            SELECT id, status,
                   count(*) FILTER (WHERE status <> 'QUEUED') OVER () AS running,
                   count(*) FILTER (WHERE status = 'QUEUED') OVER (ORDER BY ordinal) AS queued_through
            FROM lane
        )
        SELECT id, running + queued_through - 1 AS ahead
        FROM counted WHERE status = 'QUEUED' AND id = ANY(:ids)
        """
    )
    found = await session.execute(query, {"working": _WORKING_STATUSES, "ids": list(document_ids)})
    return {row.id: int(row.ahead) for row in found}


async def documents_ahead_of(session: AsyncSession, documents: Iterable[Document]) -> dict[uuid.UUID, int]:
    """`documents_ahead` for any mix of documents (one query per lane present)."""
    by_lane: dict[IngestionLane, list[uuid.UUID]] = {}
    for document in documents:
        if document.status is DocumentStatus.QUEUED:
            by_lane.setdefault(IngestionLane.of(document.session_id), []).append(document.id)
    ahead: dict[uuid.UUID, int] = {}
    for lane, ids in by_lane.items():
        ahead.update(await documents_ahead(session, lane, ids))
    return ahead


# --- this server's measured ingestion speed (workers/eta.py) ---------------------------

# Seconds per page (paged kinds) or per byte, over the latest READY documents of a kind.
_RECENT_RUNS = 20


async def recent_seconds_per_unit(
    session: AsyncSession, kind: DocumentKind, *, per_page: bool
) -> float | None:
    """The median seconds per page (or per byte) of the latest READY documents of `kind`,
    from their start and end times; None when there are none yet."""
    units = Document.page_count if per_page else Document.size_bytes
    duration = func.extract("epoch", Document.processed_at - Document.processing_started_at)
    recent = (
        select((duration / units).label("rate"))
        .where(
            Document.kind == kind,
            Document.status == DocumentStatus.READY,
            Document.processing_started_at.is_not(None),
            Document.processed_at.is_not(None),
            units > 0,
        )
        .order_by(Document.processed_at.desc())
        .limit(_RECENT_RUNS)
        .subquery()
    )
    median = await session.scalar(select(func.percentile_cont(0.5).within_group(recent.c.rate)))
    return float(median) if median is not None else None
