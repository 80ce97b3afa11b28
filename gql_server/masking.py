"""What clients see of GraphQL errors, and what the log says about them.

Masking is strawberry's own `MaskErrors` extension: it handles plain results, incremental
(`@defer`/`@stream`) frames and every event of a subscription (its `on_stream_result`
hook), and it is registered as a class so strawberry builds a fresh instance per operation.
(It used to be a hand-written extension registered as one shared instance: concurrent
requests overwrote its `execution_context`, and 12 of 20 concurrent failing requests
answered with the unmasked driver error and its SQL statement.) We add the rules:

- public (shown as is): our `PublicError`s (UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT, ...)
  and other GraphQLErrors raised on purpose, and validation/syntax errors (no original error);
- "the database is unavailable" (`is_database_unavailable`): a public DATABASE_UNAVAILABLE
  error saying so, instead of a masked bug;
- everything else: INTERNAL_SERVER_ERROR with the request's reference (`Context.request_id`),
  the same reference as the ERROR line (with traceback) in the server log.

Logging replaces strawberry's `Schema.process_errors`, which logged every error, client
errors included, as an ERROR with a traceback and the query's source (so inline passwords
landed in the log): client errors are one INFO line; unexpected errors stay ERROR with a
traceback and the reference. Lines name the operation and the variables' shape (names and
types), never their values nor the query source.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError
from starlette.requests import Request
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import (
    CannotGetOperationTypeError,
    InvalidOperationTypeError,
)
from strawberry.types import ExecutionContext

from gql_server.db.availability import (
    DATABASE_UNAVAILABLE_CODE,
    DATABASE_UNAVAILABLE_MESSAGE,
    is_database_unavailable,
)

logger = logging.getLogger("gql_server.errors")

INTERNAL_SERVER_ERROR_CODE = "INTERNAL_SERVER_ERROR"
_REFERENCE_ATTRIBUTE = "_ragql_reference"
# graphql-core quotes string values it echoes in validation messages ("found \"hunter2\"",
# 'got invalid value "..."'): the log keeps the sentence and drops the value.
_QUOTED_VALUE = re.compile(r'"(?:[^"\\]|\\.)*"')
_SHAPE_MAX_KEYS = 20
# strawberry's request errors ("queries are not allowed" over the legacy graphql-ws protocol,
# an unknown operation name): it wraps them in GraphQLErrors with safe messages of its own.
_REQUEST_ERRORS: tuple[type[Exception], ...] = (CannotGetOperationTypeError, InvalidOperationTypeError)


def is_public(error: GraphQLError) -> bool:
    """Validation and syntax errors have no original error; our PublicError and strawberry's
    permission errors are GraphQLErrors by design. Anything else is a bug (or an outage)."""
    original = error.original_error
    return original is None or isinstance(original, (GraphQLError, *_REQUEST_ERRORS))


def should_mask_error(error: GraphQLError) -> bool:
    return not is_public(error)


def reference_of(execution_context: ExecutionContext | None) -> str:
    """The reference a client sees for this operation's errors (and the log line carries).

    An HTTP request's `Context.request_id`. A WebSocket connection shares one context (and
    one request_id) between its operations, so each operation adds a suffix of its own.
    Computed once per operation and kept on its execution context."""
    if execution_context is None:
        return uuid.uuid4().hex[:12]
    existing = getattr(execution_context, _REFERENCE_ATTRIBUTE, None)
    if isinstance(existing, str):
        return existing
    context = execution_context.context
    request_id = getattr(context, "request_id", None)
    request = getattr(context, "request", None)
    if isinstance(request_id, str) and isinstance(request, Request):
        reference = request_id
    elif isinstance(request_id, str):
        reference = f"{request_id}-{uuid.uuid4().hex[:6]}"
    else:
        reference = uuid.uuid4().hex[:12]
    setattr(execution_context, _REFERENCE_ATTRIBUTE, reference)
    return reference


class MaskUnexpectedErrors(MaskErrors):
    """strawberry's MaskErrors with ragql's rules (see the module docstring). Register the
    class, never an instance: an instance is shared by concurrent operations."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask_error)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        reference = reference_of(self.execution_context)
        if is_database_unavailable(error.original_error):
            message = DATABASE_UNAVAILABLE_MESSAGE
            code = DATABASE_UNAVAILABLE_CODE
        else:
            message = f"Internal server error (request id {reference})."
            code = INTERNAL_SERVER_ERROR_CODE
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={"code": code, "requestId": reference},
        )


# ------------------------------------------------------------------------------- logging


def variables_shape(value: Any, depth: int = 0) -> Any:
    """Names and types of the variables, never their values: {"email": "str", "input": {...}}."""
    if isinstance(value, dict):
        if depth >= 3:
            return "object"
        items = list(value.items())
        shape = {str(key): variables_shape(item, depth + 1) for key, item in items[:_SHAPE_MAX_KEYS]}
        if len(items) > _SHAPE_MAX_KEYS:
            shape["…"] = f"{len(items) - _SHAPE_MAX_KEYS} more"
        return shape
    if isinstance(value, (list, tuple)):
        return f"list[{len(value)}]"
    if value is None:
        return "null"
    return type(value).__name__


def _operation_name(execution_context: ExecutionContext | None) -> str:
    if execution_context is None:
        return "unknown operation"
    try:
        name = execution_context.operation_name
    except Exception:  # the document did not parse: there is no operation to name
        name = None
    return name or "anonymous operation"


def _error_code(error: GraphQLError) -> str:
    for candidate in (error, error.original_error):
        extensions = getattr(candidate, "extensions", None)
        if isinstance(extensions, dict) and extensions.get("code"):
            return str(extensions["code"])
    return "GRAPHQL_VALIDATION_FAILED" if error.original_error is None else "BAD_REQUEST"


def _path(error: GraphQLError) -> str:
    return ".".join(str(part) for part in error.path or ()) or "-"


def log_graphql_errors(errors: Iterable[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """One line per error; a traceback only for unexpected ones. Never the query source
    (GraphQLError's str() prints it) nor variable values."""
    errors = list(errors)
    if not errors:
        return
    operation = _operation_name(execution_context)
    reference = reference_of(execution_context)
    variables = execution_context.variables if execution_context is not None else None
    shape = variables_shape(variables or {})
    for error in errors:
        original = error.original_error
        if is_public(error):
            message = error.message if original is not None else _QUOTED_VALUE.sub('"…"', error.message)
            logger.info(
                "client error %s in %s at %s (request id %s): %s variables=%s",
                _error_code(error),
                operation,
                _path(error),
                reference,
                message,
                shape,
            )
        elif is_database_unavailable(original):
            logger.warning(
                "database unavailable in %s at %s (request id %s): %s variables=%s",
                operation,
                _path(error),
                reference,
                type(original).__name__,
                shape,
            )
        else:
            logger.error(
                "unexpected error in %s at %s (request id %s) variables=%s",
                operation,
                _path(error),
                reference,
                shape,
                exc_info=original,
            )
