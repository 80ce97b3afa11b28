"""Typed error results shared by every domain, and the one place domain errors become them.

Expected failures are values in a union result (`CreateModelResult = ModelCreated |
Forbidden | InvalidInput`), so clients handle them with the type system. Services raise
the GraphQL-free exceptions of gql_server/exceptions.py; every resolver that returns a
union is decorated with `@maps_domain_errors`, and `domain_result` turns the exception into
the union member. Failures that are not part of a field's contract (anonymous caller,
missing role) are GraphQL errors with a `code` extension, raised by the field's permission
classes (gql_server/permissions.py); everything unexpected is masked (see gql_server.masking).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import strawberry
from graphql import GraphQLError

from gql_server import exceptions


@strawberry.interface(description="An expected failure, with a message a person can act on.")
class Error:
    message: str


@strawberry.type(description="The object does not exist, or you may not see it.")
class NotFound(Error):
    message: str = "Not found."


@strawberry.type(description="You are signed in but this action is not allowed for you.")
class Forbidden(Error):
    message: str = "You are not allowed to do this."


@strawberry.type
class FieldError:
    field: str
    message: str


@strawberry.type(description="The input is invalid; `fieldErrors` says which field and why.")
class InvalidInput(Error):
    field_errors: list[FieldError]

    @classmethod
    def of(cls, field: str, message: str) -> InvalidInput:
        return cls(message=message, field_errors=[FieldError(field=field, message=message)])

    @classmethod
    def from_problems(cls, problems: list[tuple[str, str]]) -> InvalidInput:
        return cls(
            message="; ".join(message for _, message in problems),
            field_errors=[FieldError(field=field, message=message) for field, message in problems],
        )


@strawberry.type(description="The name or value is already taken.")
class AlreadyExists(Error):
    field: str


@strawberry.type(description="Too many attempts; try again later.")
class RateLimited(Error):
    retry_after_seconds: int


def domain_result(error: exceptions.DomainError) -> Any:
    """The union member that tells the client about `error`."""
    # Imported here: the domain result types import this module for Error and NotFound.
    from gql_server.auth.types import (
        InvalidCredentials,
        InvalidRefreshToken,
        PasswordLoginDisabled,
        SignUpDisabled,
    )
    from gql_server.chat.types import GenerationInProgress, StorageQuotaExceeded
    from gql_server.documents.types import (
        Document,
        DuplicateDocument,
        FileTooLarge,
        StorageFull,
        UnsupportedFileType,
    )
    from gql_server.oidc.types import InvalidLoginCode
    from gql_server.quotas.limits import QuotaKind
    from gql_server.quotas.types import QuotaExceeded

    match error:
        case exceptions.NotFoundError():
            return NotFound(message=error.message)
        case exceptions.ForbiddenError():
            return Forbidden(message=error.message)
        case exceptions.InvalidInputError():
            return InvalidInput.from_problems(error.problems)
        case exceptions.AlreadyExistsError():
            return AlreadyExists(message=error.message, field=error.field)
        case exceptions.RateLimitedError():
            return RateLimited(message=error.message, retry_after_seconds=error.retry_after_seconds)
        case exceptions.InvalidCredentialsError():
            return InvalidCredentials(message=error.message)
        case exceptions.InvalidRefreshTokenError():
            return InvalidRefreshToken(message=error.message)
        case exceptions.SignUpDisabledError():
            return SignUpDisabled(message=error.message)
        case exceptions.PasswordLoginDisabledError():
            return PasswordLoginDisabled(message=error.message)
        case exceptions.InvalidLoginCodeError():
            return InvalidLoginCode(message=error.message)
        case exceptions.GenerationInProgressError():
            return GenerationInProgress(message=error.message, message_id=error.message_id)
        case exceptions.UsageQuotaExceededError():
            return QuotaExceeded(
                message=error.message,
                kind=QuotaKind(error.kind),
                limit=error.limit,
                used=min(error.used, 2**31 - 1),
                resets_at=error.resets_at,
            )
        case exceptions.DuplicateDocumentError():
            return DuplicateDocument(message=error.message, existing=Document.from_row(error.existing))
        case exceptions.UnsupportedFileTypeError():
            return UnsupportedFileType(message=error.message)
        case exceptions.FileTooLargeError():
            return FileTooLarge(message=error.message, max_bytes=float(error.max_bytes))
        case exceptions.StorageFullError():
            return StorageFull(message=error.message)
        case exceptions.AttachmentQuotaExceededError():
            return StorageQuotaExceeded(
                message=error.message,
                limit_bytes=float(error.limit_bytes),
                used_bytes=float(error.used_bytes),
            )
    raise TypeError(f"No GraphQL result for {type(error).__name__}") from error


P = ParamSpec("P")
R = TypeVar("R")


def maps_domain_errors(resolver: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate a resolver that returns a union: a DomainError it raises becomes the union
    member (`domain_result`). Put it under `@strawberry.field` / `@strawberry.mutation`."""

    @functools.wraps(resolver)
    async def resolve(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await resolver(*args, **kwargs)
        except exceptions.DomainError as error:
            return domain_result(error)  # type: ignore[no-any-return]

    return resolve


class PublicError(GraphQLError):
    """A GraphQL error whose message is safe to show (never masked)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


class AuthenticationRequired(PublicError):
    def __init__(self, message: str = "Authentication required: send a valid access token.") -> None:
        super().__init__(message, "UNAUTHENTICATED")
