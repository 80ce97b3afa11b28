"""Expected failures raised by services and turned into typed GraphQL results by resolvers.

Services raise `ActionRefused`; the resolver's transaction rolls back (nothing half-written)
and `as_result` maps the failure to NotFound / Forbidden / InvalidInput / AlreadyExists.
"""

from __future__ import annotations

from typing import Literal

from gql_server.errors import AlreadyExists, Forbidden, InvalidInput, NotFound

FailureKind = Literal["not_found", "forbidden", "invalid", "exists"]


class ActionRefused(Exception):
    def __init__(
        self,
        kind: FailureKind,
        message: str,
        field: str = "input",
        problems: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.field = field
        self.problems = problems

    @classmethod
    def invalid(cls, problems: list[tuple[str, str]]) -> ActionRefused:
        return cls("invalid", "; ".join(message for _, message in problems), problems[0][0], problems)

    @classmethod
    def not_found(cls, what: str) -> ActionRefused:
        return cls("not_found", f"{what} was not found.")


def as_result(failure: ActionRefused) -> NotFound | Forbidden | InvalidInput | AlreadyExists:
    if failure.kind == "not_found":
        return NotFound(message=failure.message)
    if failure.kind == "forbidden":
        return Forbidden(message=failure.message)
    if failure.kind == "exists":
        return AlreadyExists(message=failure.message, field=failure.field)
    return InvalidInput.from_problems(failure.problems or [(failure.field, failure.message)])


def text_problems(values: dict[str, tuple[str | None, int]]) -> list[tuple[str, str]]:
    """Length checks: {graphql field name: (value, maximum characters)}."""
    problems = []
    for field, (value, maximum) in values.items():
        if value is not None and len(value) > maximum:
            problems.append((field, f"{field} can have at most {maximum} characters."))
    return problems
