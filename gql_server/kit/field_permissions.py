"""The permission declarations fields use: fresh PermissionExtension lists per field (an
extension instance keeps per-field state). See gql_server/permissions.py for the classes;
each shows in schema.graphql as a directive on the field."""

from __future__ import annotations

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import PermissionExtension

from gql_server.permissions import (
    IsAdmin,
    IsAdminOrSelf,
    IsAuthenticated,
    IsInteractiveSession,
    IsSuperadmin,
    NeedsAdminScope,
)


def signed_in() -> list[FieldExtension]:
    return [PermissionExtension(permissions=[IsAuthenticated()])]


def admin_only() -> list[FieldExtension]:
    return [PermissionExtension(permissions=[IsAdmin()])]


def superadmin_only() -> list[FieldExtension]:
    return [PermissionExtension(permissions=[IsSuperadmin()])]


def admin_or_self() -> list[FieldExtension]:
    """On a field of User: administrators, or the user themselves."""
    return [PermissionExtension(permissions=[IsAdminOrSelf()])]


def session_only() -> list[FieldExtension]:
    """Signed in with a log-in session: personal access tokens are refused (FORBIDDEN)."""
    return [PermissionExtension(permissions=[IsInteractiveSession()])]


def admin_scope() -> list[FieldExtension]:
    """Signed in (the service checks the role); a personal access token needs the ADMIN scope."""
    return [PermissionExtension(permissions=[NeedsAdminScope()])]
