"""Field permissions: one mechanism, declared on the field and visible in the schema.

A field that needs a signed-in caller or a role says so with `extensions=signed_in()`,
`admin_only()` or `superadmin_only()` (gql_server/kit/field_permissions.py). Those attach
strawberry's PermissionExtension with the classes below; each class adds its schema
directive to the field, so schema.graphql shows the rule (`@isAuthenticated`, `@isAdmin`).
`has_permission` only answers; when it answers no, strawberry raises the class's
`message` with its `error_extensions` (the `code` clients switch on). Resolvers do not
check roles again. Whether the caller may see a particular object is decided by the
per-kind policies in gql_server/access/policy.py, which the services call.

Personal access tokens (gql_server/access_tokens/service.py) carry scopes. Each class names
the scope a token needs (`scope_for`): CHAT for signed-in fields, ADMIN for the
administrators' (so a CHAT-scoped token of an administrator does not reach them), and
`IsInteractiveSession` refuses tokens outright (creating tokens, changing the password). A
token without the scope gets FORBIDDEN, whatever the account's role. A log-in session's
access token has every scope.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from strawberry.permission import BasePermission

from gql_server.access.policy import is_admin
from gql_server.context import Info
from gql_server.db.models import AccessTokenScope, Role, User

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
        scope = self.scope_for(user, source)
        if not info.context.token_allows(scope):
            _refusal.set((_missing_scope(scope), FORBIDDEN))
            return False
        _refusal.set(None)
        return self.allows(user, source)

    def scope_for(self, user: User, source: Any) -> AccessTokenScope:
        """The scope a personal access token needs for this field."""
        return AccessTokenScope.CHAT

    def allows(self, user: User, source: Any) -> bool:
        return True

    def on_unauthorized(self) -> None:
        message, extensions = _refusal.get() or (self.message, self.error_extensions)
        raise self.error_class(message, extensions=dict(extensions))


FORBIDDEN: dict[str, Any] = {"code": "FORBIDDEN"}


def _missing_scope(scope: AccessTokenScope) -> str:
    return f"This personal access token does not have the {scope.value} scope needed here."


class IsAdmin(IsAuthenticated):
    """Administrators and the superadmin."""

    message = "Only administrators can do this."
    error_extensions = {"code": "FORBIDDEN"}

    def scope_for(self, user: User, source: Any) -> AccessTokenScope:
        return AccessTokenScope.ADMIN

    def allows(self, user: User, source: Any) -> bool:
        return user.role in (Role.ADMIN, Role.SUPERADMIN)


class IsSuperadmin(IsAuthenticated):
    message = "Only the superadmin can do this."
    error_extensions = {"code": "FORBIDDEN"}

    def scope_for(self, user: User, source: Any) -> AccessTokenScope:
        return AccessTokenScope.ADMIN

    def allows(self, user: User, source: Any) -> bool:
        return user.role is Role.SUPERADMIN


class IsAdminOrSelf(IsAuthenticated):
    """On a field of User: administrators, or that user themselves."""

    message = "Only administrators can see another user's groups."
    error_extensions = {"code": "FORBIDDEN"}

    def scope_for(self, user: User, source: Any) -> AccessTokenScope:
        return AccessTokenScope.CHAT if user.id == source.id else AccessTokenScope.ADMIN

    def allows(self, user: User, source: Any) -> bool:
        return is_admin(user) or user.id == source.id


class NeedsAdminScope(IsAuthenticated):
    """Signed in; the service decides by role and object (e.g. who manages a model's
    documents). A personal access token needs the ADMIN scope: these fields change what
    other people read, which the CHAT scope does not cover."""

    message = "Authentication required: send a valid access token."
    error_extensions = {"code": "UNAUTHENTICATED"}

    def scope_for(self, user: User, source: Any) -> AccessTokenScope:
        return AccessTokenScope.ADMIN


class IsInteractiveSession(IsAuthenticated):
    """Signed in with a log-in session (the password), not a personal access token: a token
    must not mint more tokens, revoke them, or change the account's password."""

    message = "Personal access tokens cannot do this: sign in with your password."
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if info.context.user is not None and info.context.personal_token is not None:
            _refusal.set((self.message, FORBIDDEN))
            return False
        return super().has_permission(source, info, **kwargs)
