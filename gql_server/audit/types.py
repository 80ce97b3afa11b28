"""GraphQL type of an audit-log entry (hand-written: `details` is JSON, `actorId` a string id).

The names (`targetName`, `userEmail`, `groupName`) are resolved through per-request
dataloaders, so a page of entries costs one statement per kind of name, not one per entry.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from gql_server.audit.loaders import model_name
from gql_server.context import Info
from gql_server.db.models import AuditLogEntry as AuditLogEntryRow
from gql_server.groups.loaders import group_by_id
from gql_server.users.loaders import user_by_id


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


async def _user_email(info: Info, user_id: uuid.UUID | None) -> str | None:
    if user_id is None:
        return None
    user = await info.context.loader("users.by_id", user_by_id).load(user_id)
    return user.email if user is not None else None


async def _group_name(info: Info, group_id: uuid.UUID | None) -> str | None:
    if group_id is None:
        return None
    group = await info.context.loader("groups.by_id", group_by_id).load(group_id)
    return group.name if group is not None else None


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
    recorded: strawberry.Private[dict[str, Any]]

    @strawberry.field(
        description="The target's name as it is now — a user's email, a model's or a group's name — or, "
        "once the object is gone, the name recorded with the entry (null when none was)."
    )
    async def target_name(self, info: Info) -> str | None:
        target = _uuid(self.target_id)
        current: str | None = None
        if target is not None and self.target_type == "user":
            current = await _user_email(info, target)
        elif target is not None and self.target_type == "group":
            current = await _group_name(info, target)
        elif target is not None and self.target_type == "model":
            current = await info.context.loader("audit.model_name", model_name).load(target)
        recorded = self.recorded.get("name")
        return current or (str(recorded) if recorded else None)

    @strawberry.field(
        description="The email of the user the details name (`userId`: the member added or removed, the "
        "user granted or revoked a model); null when there is none or the account is gone."
    )
    async def user_email(self, info: Info) -> str | None:
        return await _user_email(info, _uuid(self.recorded.get("userId")))

    @strawberry.field(
        description="The name of the group the details name (`groupId`: the group granted or revoked a "
        "model); null when there is none or the group is gone."
    )
    async def group_name(self, info: Info) -> str | None:
        return await _group_name(info, _uuid(self.recorded.get("groupId")))

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
            recorded=dict(row.details or {}),
        )
