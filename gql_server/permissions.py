"""Field-level permission classes (attached through strawberry's PermissionExtension).

They check the caller's role only. Whether a caller may see a particular object is
decided by the per-kind policies in gql_server/access/policy.py.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from gql_server.context import Info


class IsAuthenticated(BasePermission):
    message = "Authentication required: send a valid access token."
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.require_user()
        return True


class IsAdmin(BasePermission):
    message = "Only administrators can do this."
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.require_admin()
        return True


class IsSuperadmin(BasePermission):
    message = "Only the superadmin can do this."
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.require_superadmin()
        return True
