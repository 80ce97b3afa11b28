"""The audit-log query (superadmin only)."""

from __future__ import annotations

import uuid

import strawberry

from gql_server.audit import repository
from gql_server.audit.types import AuditLogEntry
from gql_server.context import Info
from gql_server.kit.field_permissions import superadmin_only
from gql_server.kit.page import Page, build_page, parse_page_arguments


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="Administrative actions, newest first. Superadmin only.",
        extensions=superadmin_only(),
    )
    async def audit_log(
        self,
        info: Info,
        first: int = 50,
        offset: int | None = None,
        after: str | None = None,
        action: str | None = None,
        actor_id: uuid.UUID | None = None,
    ) -> Page[AuditLogEntry]:
        request = parse_page_arguments(first, offset, after)
        async with info.context.sessionmaker() as session:
            rows, total = await repository.list_entries(
                session, limit=request.limit, offset=request.offset, action=action, actor_id=actor_id
            )
        return build_page([AuditLogEntry.from_row(row) for row in rows], total, request)
