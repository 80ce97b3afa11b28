"""Fresh PermissionExtension lists per field (an extension instance keeps per-field state)."""

from __future__ import annotations

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import PermissionExtension

from gql_server.permissions import IsAdmin, IsAuthenticated, IsSuperadmin


def signed_in() -> list[FieldExtension]:
    return [PermissionExtension(permissions=[IsAuthenticated()])]


def admin_only() -> list[FieldExtension]:
    return [PermissionExtension(permissions=[IsAdmin()])]


def superadmin_only() -> list[FieldExtension]:
    return [PermissionExtension(permissions=[IsSuperadmin()])]
