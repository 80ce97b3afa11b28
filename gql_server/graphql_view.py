"""The strawberry ASGI view: builds the per-request context and authenticates callers."""

from __future__ import annotations

import logging
from typing import Any

from cross_web import HTTPException, StarletteRequestAdapter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from gql_server.auth.service import authenticate_access_token
from gql_server.context import Context
from gql_server.documents.storage import incoming_dir
from gql_server.documents.uploads import IncomingFile, MultipartRejected, parse_streamed_multipart
from gql_server.state import AppState

INCOMING_FILES_SCOPE_KEY = "ragql.incoming_files"


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
    try:
        async with context.state.sessionmaker() as session:
            user, reason = await authenticate_access_token(session, context.state.tokens, token)
    except Exception as error:
        # The user row cannot be read: the database is down (killed, restarting). Not a bug
        # and not the caller's fault: a typed error they can retry on, never a bare HTTP 500.
        from gql_server.db.availability import is_database_unavailable

        if not is_database_unavailable(error):
            raise
        logging.getLogger(__name__).warning(
            "cannot authenticate a request: the database is unavailable (%s)", type(error).__name__
        )
        if isinstance(context.request, WebSocket):
            await _refuse_websocket(context.request)
        raise DatabaseUnavailableError() from error
    context.user = user
    context.auth_error = reason


class DatabaseUnavailableError(Exception):
    """Raised while building the request context; `database_unavailable_response` renders it
    (registered as an exception handler on the app) as a GraphQL request error with HTTP 503."""


async def database_unavailable_response(request: Request, error: Exception) -> Response:
    from gql_server.db.availability import DATABASE_UNAVAILABLE_CODE, DATABASE_UNAVAILABLE_MESSAGE

    accept = request.headers.get("accept", "")
    media_type = (
        "application/graphql-response+json" if "application/graphql-response+json" in accept else None
    )
    return JSONResponse(
        {
            "errors": [
                {"message": DATABASE_UNAVAILABLE_MESSAGE, "extensions": {"code": DATABASE_UNAVAILABLE_CODE}}
            ]
        },
        status_code=503,
        headers={"Retry-After": "5"},
        media_type=media_type,
    )


async def _refuse_websocket(websocket: WebSocket) -> None:
    """connection_init arrived while the database is down: say so, then close with 1013
    (Try Again Later). graphql-transport-ws has no error message for connection_init, so its
    clients get the close code and reason; legacy graphql-ws clients also get connection_error."""
    from strawberry.http.exceptions import WebSocketDisconnected

    from gql_server.db.availability import DATABASE_UNAVAILABLE_CODE, DATABASE_UNAVAILABLE_MESSAGE

    offered = list(websocket.scope.get("subprotocols") or [])
    chosen = next((p for p in offered if p in (GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL)), None)
    try:
        if chosen == GRAPHQL_WS_PROTOCOL:
            payload = {
                "message": DATABASE_UNAVAILABLE_MESSAGE,
                "extensions": {"code": DATABASE_UNAVAILABLE_CODE},
            }
            await websocket.send_json({"type": "connection_error", "payload": payload})
        await websocket.close(code=1013, reason=DATABASE_UNAVAILABLE_MESSAGE)
    except Exception:  # the client went away first
        pass
    # Ends the protocol handler's loop quietly (it treats this as the client leaving).
    raise WebSocketDisconnected()


class RagqlRequestAdapter(StarletteRequestAdapter):
    """Exposes the starlette request, so multipart bodies can be streamed."""

    @property
    def starlette_request(self) -> Request:
        return self._request


class RagqlGraphQL(GraphQL[Context, None]):
    request_adapter_class = RagqlRequestAdapter

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
            request.state.graphql_context = context
        return context

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        try:
            return await super().run(request, context, root_value)
        finally:
            # Uploaded files a resolver did not move into place (refused, duplicate,
            # failed request) are removed once the response is ready.
            for incoming in request.scope.get(INCOMING_FILES_SCOPE_KEY, ()):
                incoming.discard()

    async def parse_multipart(self, request: Any) -> dict[str, str]:
        """Stream multipart uploads straight into the storage dir (see documents/uploads.py)."""
        starlette_request: Request = request.starlette_request
        context: Context | None = getattr(starlette_request.state, "graphql_context", None)
        if context is None or context.user is None:
            # Nobody anonymous gets to write hundreds of MB to our disk.
            raise HTTPException(401, "Authentication required: send a valid access token to upload files.")
        settings = context.state.settings
        registry: list[IncomingFile] = starlette_request.scope.setdefault(INCOMING_FILES_SCOPE_KEY, [])
        try:
            form = await parse_streamed_multipart(
                starlette_request.headers.get("content-type", ""),
                starlette_request.stream(),
                incoming_dir(settings),
                settings.max_upload_bytes,
                registry,
            )
        except MultipartRejected as rejected:
            raise HTTPException(rejected.status_code, rejected.message) from rejected
        operations = self.parse_json(form.fields.get("operations", "{}"))
        files_map = self.parse_json(form.fields.get("map", "{}"))
        try:
            return replace_placeholders_with_files(operations, files_map, form.files)
        except (KeyError, IndexError, TypeError) as error:
            raise HTTPException(400, "File(s) missing in form data") from error

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
