"""SQL for the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.db.models import AuditLogEntry, RagModel


async def list_entries(
    session: AsyncSession, *, limit: int, offset: int, action: str | None, actor_id: uuid.UUID | None
) -> tuple[Sequence[AuditLogEntry], int]:
    conditions = []
    if action:
        conditions.append(AuditLogEntry.action == action)
    if actor_id is not None:
        conditions.append(AuditLogEntry.actor_id == actor_id)
    rows = await session.scalars(
        select(AuditLogEntry)
        .where(*conditions)
        .order_by(AuditLogEntry.created_at.desc(), AuditLogEntry.id.desc())
        .limit(limit)
        .offset(offset)
    )
    total = await session.scalar(select(func.count()).select_from(AuditLogEntry).where(*conditions))
    return rows.all(), int(total or 0)


async def model_names(session: AsyncSession, model_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The names of the models that still exist among `model_ids` (for the log's names)."""
    rows = await session.execute(select(RagModel.id, RagModel.name).where(RagModel.id.in_(model_ids)))
    return {model_id: name for model_id, name in rows.tuples()}
