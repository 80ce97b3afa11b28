"""GraphQL type of an audit-log entry (hand-written: `details` is JSON, `actorId` a string id)."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from gql_server.db.models import AuditLogEntry as AuditLogEntryRow


@strawberry.type(description="One administrative action: who did what to which object, and when.")
class AuditLogEntry:
    id: strawberry.ID
    actor_id: uuid.UUID | None
    actor_email: str | None
    action: str
    target_type: str
    target_id: str | None
    details: JSON
    created_at: datetime

    @classmethod
    def from_row(cls, row: AuditLogEntryRow) -> AuditLogEntry:
        return cls(
            id=strawberry.ID(str(row.id)),
            actor_id=row.actor_id,
            actor_email=row.actor_email,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            details=row.details,  # type: ignore[arg-type]
            created_at=row.created_at,
        )
