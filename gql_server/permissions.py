"""Field permissions: one mechanism, declared on the field and visible in the schema.

A field that needs a signed-in caller or a role says so with `extensions=signed_in()`,
`admin_only()` or `superadmin_only()` (gql_server/kit/field_permissions.py). Those attach
strawberry's PermissionExtension with the classes below; each class adds its schema
directive to the field, so schema.graphql shows the rule (`@isAuthenticated`, `@isAdmin`).
`has_permission` only answers; when it answers no, strawberry raises the class's
`message` with its `error_extensions` (the `code` clients switch on). Resolvers do not
check roles again. Whether the caller may see a particular object is decided by the
per-kind policies in gql_server/access/policy.py, which the services call.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from strawberry.permission import BasePermission

from gql_server.access.policy import is_admin
from gql_server.context import Info
from gql_server.db.models import Role, User

# Which refusal this request gets: IsAuthenticated's (with the reason the token that was
# sent is no good: expired, tampered, account deactivated...) when nobody is signed in, else
# the class's own. One permission instance serves every request, so this cannot live on
# it; has_permission and on_unauthorized run back to back in the same task.
_refusal: ContextVar[tuple[str, dict[str, Any]] | None] = ContextVar("ragql_refusal", default=None)


class IsAuthenticated(BasePermission):
    """A signed-in caller. The role classes below extend it: one directive per field says
    everything (`@isAdmin` implies signed in), and an anonymous caller is told to sign in."""

    message = "Authentication required: send a valid access token."
    error_extensions: dict[str, Any] = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        user = info.context.user
        if user is None:
            message = info.context.auth_error or IsAuthenticated.message
            _refusal.set((message, IsAuthenticated.error_extensions))
            return False
        _refusal.set(None)
        return self.allows(user, source)

    def allows(self, user: User, source: Any) -> bool:
        return True

    def on_unauthorized(self) -> None:
        message, extensions = _refusal.get() or (self.message, self.error_extensions)
        raise self.error_class(message, extensions=dict(extensions))


class IsAdmin(IsAuthenticated):
    """Administrators and the superadmin."""

    message = "Only administrators can do this."
    error_extensions = {"code": "FORBIDDEN"}

    def allows(self, user: User, source: Any) -> bool:
        return user.role in (Role.ADMIN, Role.SUPERADMIN)


class IsSuperadmin(IsAuthenticated):
    message = "Only the superadmin can do this."
    error_extensions = {"code": "FORBIDDEN"}

    def allows(self, user: User, source: Any) -> bool:
        return user.role is Role.SUPERADMIN


class IsAdminOrSelf(IsAuthenticated):
    """On a field of User: administrators, or that user themselves."""

    message = "Only administrators can see another user's groups."
    error_extensions = {"code": "FORBIDDEN"}

    def allows(self, user: User, source: Any) -> bool:
        return is_admin(user) or user.id == source.id
