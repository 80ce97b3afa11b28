"""The expected failures of every domain: one small hierarchy, free of GraphQL.

Services raise these; the request's transaction rolls back (nothing half-written), and the
GraphQL edge turns each into the union member clients see — in one place,
`gql_server.errors.domain_result`, applied to every resolver that returns a union by the
`@maps_domain_errors` decorator. Nothing here imports strawberry or graphql, so services,
repositories, retrieval and the workers can raise them without knowing about the API.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any


class DomainError(Exception):
    """An expected failure, with a message a person can act on."""

    default_message = "The request could not be carried out."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class NotFoundError(DomainError):
    """The object does not exist, or the caller may not see it (the same answer for both)."""

    default_message = "Not found."

    @classmethod
    def of(cls, what: str) -> NotFoundError:
        return cls(f"{what} was not found.")


class ForbiddenError(DomainError):
    """The caller is signed in and may see the object, but not do this to it."""

    default_message = "You are not allowed to do this."


class InvalidInputError(DomainError):
    """One or more input fields are wrong; `problems` are (GraphQL field name, reason)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))

    @classmethod
    def of(cls, field: str, message: str) -> InvalidInputError:
        return cls([(field, message)])


class AlreadyExistsError(DomainError):
    """A unique name or value is taken."""

    def __init__(self, message: str, field: str = "name") -> None:
        super().__init__(message)
        self.field = field


class RateLimitedError(DomainError):
    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


# --- auth -------------------------------------------------------------------------------
class InvalidCredentialsError(DomainError):
    """Log-in failed; the message never says whether the email has an account."""


class InvalidRefreshTokenError(DomainError):
    """The refresh token is invalid, expired, revoked or was already used."""


class SignUpDisabledError(DomainError):
    default_message = "Sign-up is disabled on this server."


class PasswordLoginDisabledError(DomainError):
    default_message = "Log-in with a password is turned off on this server; sign in with single sign-on."


class InvalidLoginCodeError(DomainError):
    """The one-time code of an OIDC log-in is unknown, expired or was already used."""

    default_message = "This sign-in link has expired or was already used; sign in again."


class OidcLoginRefusedError(DomainError):
    """An OIDC log-in cannot go on; `reason` is the short code the SPA is sent (`#error=`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# --- chat -------------------------------------------------------------------------------
class GenerationInProgressError(DomainError):
    """One answer per user at a time: `message_id` is the one still being generated."""

    default_message = "An answer of yours is still being generated. Wait for it to finish or stop it first."

    def __init__(self, message_id: uuid.UUID) -> None:
        super().__init__()
        self.message_id = message_id


class UsageQuotaExceededError(DomainError):
    """A usage quota is used up; nothing was stored. `kind` is the limit's name
    (MESSAGES_PER_DAY, TOKENS_PER_DAY, TOKENS_PER_MONTH), `resets_at` when it frees up."""

    def __init__(self, kind: str, limit: int, used: int, resets_at: datetime) -> None:
        noun = "messages" if kind == "MESSAGES_PER_DAY" else "tokens"
        period = "this month" if kind == "TOKENS_PER_MONTH" else "today"
        super().__init__(
            f"You have used {used} of your {limit} {noun} {period}; "
            f"the quota resets at {resets_at:%Y-%m-%d %H:%M} UTC."
        )
        self.kind = kind
        self.limit = limit
        self.used = used
        self.resets_at = resets_at


# --- documents --------------------------------------------------------------------------
class DuplicateDocumentError(DomainError):
    """The same bytes (sha256) are already in the model or session; `existing` is that row,
    detached with its loaded state so the rollback that follows does not expire it."""

    def __init__(self, existing: Any) -> None:
        super().__init__(f"The same file is already in this model as “{existing.filename}”.")
        self.existing = existing


class UnsupportedFileTypeError(DomainError):
    """The content is not a kind of document we can ingest (decided from the bytes)."""


class FileTooLargeError(DomainError):
    def __init__(self, message: str, max_bytes: int) -> None:
        super().__init__(message)
        self.max_bytes = max_bytes


class AttachmentQuotaExceededError(DomainError):
    """The file would take the user's chat attachments over ATTACHMENT_QUOTA_MB_PER_USER."""

    def __init__(self, limit_bytes: int, used_bytes: int, file_bytes: int) -> None:
        super().__init__(
            f"Your chat attachments use {_mb(used_bytes)} of your {_mb(limit_bytes)}; this file "
            f"({_mb(file_bytes)}) would go over it. Delete chats with attachments you no longer need."
        )
        self.limit_bytes = limit_bytes
        self.used_bytes = used_bytes


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


class StorageFullError(DomainError):
    default_message = (
        "The server's disk is full, so the file could not be stored; nothing of it was kept. "
        "Ask an administrator to free space, then upload it again."
    )


def text_problems(values: dict[str, tuple[str | None, int]]) -> list[tuple[str, str]]:
    """Length checks for an InvalidInputError: {graphql field name: (value, maximum characters)}."""
    problems = []
    for field, (value, maximum) in values.items():
        if value is not None and len(value) > maximum:
            problems.append((field, f"{field} can have at most {maximum} characters."))
    return problems
