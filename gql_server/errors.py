"""Typed error results shared by every domain.

Expected failures are values in a union result (`CreateModelResult = ModelCreated |
Forbidden | InvalidInput`), so clients handle them with the type system. Failures
that are not part of a field's contract (anonymous caller, missing role) are GraphQL
errors with a `code` extension; everything unexpected is masked (see gql_server.masking).
"""

from __future__ import annotations

import strawberry
from graphql import GraphQLError


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


class PublicError(GraphQLError):
    """A GraphQL error whose message is safe to show (never masked)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


class AuthenticationRequired(PublicError):
    def __init__(self, message: str = "Authentication required: send a valid access token.") -> None:
        super().__init__(message, "UNAUTHENTICATED")


class PermissionDenied(PublicError):
    def __init__(self, message: str = "You are not allowed to do this.") -> None:
        super().__init__(message, "FORBIDDEN")
