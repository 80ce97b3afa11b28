"""The strawberry ASGI view: builds the per-request context and authenticates callers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from gql_server.auth.service import authenticate_access_token
from gql_server.context import Context
from gql_server.state import AppState


def _bearer(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return value


async def authenticate(context: Context, token: str | None) -> None:
    if token is None:
        return
    async with context.state.sessionmaker() as session:
        user, reason = await authenticate_access_token(session, context.state.tokens, token)
    context.user = user
    context.auth_error = reason


class RagqlGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: Any) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            multipart_uploads_enabled=True,
            keep_alive=True,
            keep_alive_interval=15,
        )

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:  # type: ignore[override]
        state: AppState = request.state.app_state
        context = Context(state=state, request=request, response=response)
        if isinstance(request, Request):
            await authenticate(context, _bearer(request.headers.get("authorization")))
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:  # type: ignore[override]
        params = context.connection_params or {}
        if not isinstance(params, dict):
            raise ConnectionRejectionError({"message": "connection_init payload must be an object"})
        token = None
        for key in ("Authorization", "authorization", "accessToken", "token"):
            token = _bearer(params.get(key))
            if token:
                break
        if token is not None:
            await authenticate(context, token)
            if context.user is None:
                raise ConnectionRejectionError({"message": context.auth_error or "Invalid access token."})
        return UNSET
