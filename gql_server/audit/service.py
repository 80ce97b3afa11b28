"""Recording admin actions. Called inside the action's own transaction, so an action and
its audit entry are committed (or rolled back) together.

`details` must never carry secrets: callers pass field names that changed, not values,
for anything sensitive (the API key is recorded as `"apiKey": "changed"`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.db.models import AuditLogEntry, User


async def record(
    session: AsyncSession,
    actor: User,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str | None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLogEntry(
            actor_id=actor.id,
            actor_email=actor.email,
            action=action,
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            details=details or {},
        )
    )
