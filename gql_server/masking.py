"""Mask unexpected errors: log them with a request id, show only that id to the client."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

logger = logging.getLogger("gql_server.errors")


def _is_public(error: GraphQLError) -> bool:
    original = error.original_error
    # Validation and syntax errors have no original error; our PublicError and strawberry's
    # permission errors are GraphQLErrors by design. Anything else is a bug: mask it.
    return original is None or isinstance(original, GraphQLError)


class MaskUnexpectedErrors(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not getattr(result, "errors", None):
            return
        processed: list[GraphQLError] = []
        for error in result.errors or ():
            if _is_public(error):
                processed.append(error)
                continue
            request_id = uuid.uuid4().hex[:12]
            logger.error(
                "unexpected error in %s (request id %s)",
                self.execution_context.operation_name or "anonymous operation",
                request_id,
                exc_info=error.original_error,
            )
            processed.append(
                GraphQLError(
                    f"Internal server error (request id {request_id}).",
                    nodes=error.nodes,
                    path=error.path,
                    extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
                )
            )
        result.errors = processed
