"""The strawberry ASGI view: builds the per-request context and authenticates callers."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import AsyncGenerator
from typing import Any

from cross_web import HTTPException, StarletteRequestAdapter
from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from gql_server.auth.bearer import authenticate_bearer
from gql_server.context import Context
from gql_server.db.availability import DatabaseUnavailable
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
        identity = await authenticate_bearer(context.state.sessionmaker, context.state.tokens, token)
    except DatabaseUnavailable as error:
        # The user row cannot be read: a typed error the caller can retry on.
        logging.getLogger(__name__).warning(
            "cannot authenticate a request: the database is unavailable (%s)", type(error.__cause__).__name__
        )
        if isinstance(context.request, WebSocket):
            await _refuse_websocket(context.request)
        raise DatabaseUnavailableError() from error
    context.user = identity.user
    context.auth_error = identity.reason
    context.personal_token = identity.personal_token


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


# --- GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/) -----------------
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"
MEDIA_TYPE_SCOPE_KEY = "ragql.response_media_type"
SUB_RESPONSE_SCOPE_KEY = "ragql.sub_response"
SUBSCRIPTION_OVER_HTTP = (
    "Subscriptions are served over WebSocket at /graphql (graphql-transport-ws or graphql-ws), "
    "not over plain HTTP."
)
MULTIPLE_OPERATIONS = "Must provide operation name if query contains multiple operations."
# Operation keywords: a document needs two of them to hold two *named* operations (two
# anonymous ones, or one anonymous and one named, already fail validation).
_OPERATION_KEYWORD = re.compile(r"\b(?:query|mutation|subscription)\b")


class ProtocolError(HTTPException):
    """A request that is not a well-formed GraphQL-over-HTTP request (405, 406, 415, ...),
    answered as a JSON GraphQL error with these extra headers (e.g. `Allow`)."""

    def __init__(self, status_code: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code, reason)
        self.headers = headers or {}


def _accept_ranges(accept: str) -> list[tuple[str, float]]:
    ranges: list[tuple[str, float]] = []
    for item in accept.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        if not media_range:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media_range.lower(), quality))
    return ranges


def negotiate_media_type(accept: str | None) -> str | None:
    """The response media type for this Accept header, or None when neither JSON type is
    acceptable (answered with 406).

    - No Accept header: application/graphql-response+json (the draft's default since
      2025-01-01; the audit suite's older text says application/json, see README).
    - Only wildcards (`*/*`, `application/*`, as curl and browsers send): application/json,
      so legacy clients keep 200 answers.
    - Otherwise the type with the higher q; on a tie application/graphql-response+json.
    """
    if accept is None or not accept.strip():
        return GRAPHQL_RESPONSE_JSON
    ranges = _accept_ranges(accept)

    def quality(media_type: str) -> tuple[float, bool]:
        exact = [q for r, q in ranges if r == media_type]
        if exact:
            return max(exact), True
        partial = [q for r, q in ranges if r == "application/*"] or [q for r, q in ranges if r == "*/*"]
        return (max(partial), False) if partial else (0.0, False)

    new_q, new_exact = quality(GRAPHQL_RESPONSE_JSON)
    json_q, json_exact = quality(APPLICATION_JSON)
    if new_q <= 0 and json_q <= 0:
        return None
    if not new_exact and not json_exact:
        return APPLICATION_JSON
    return GRAPHQL_RESPONSE_JSON if new_q >= json_q else APPLICATION_JSON


def _may_define_two_operations(query: str) -> bool:
    """False when the text cannot hold two named operations (the usual case: no parse)."""
    matches = _OPERATION_KEYWORD.finditer(query)
    return next(matches, None) is not None and next(matches, None) is not None


@functools.lru_cache(maxsize=256)
def _operation_count(query: str, max_tokens: int) -> int:
    """How many operations a document defines (0 when it does not parse: execution reports
    the syntax error). Cached like strawberry's ParserCache: clients repeat their documents
    (at most 256 of at most MAX_DOCUMENT_KB each)."""
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return 0
    return sum(isinstance(definition, OperationDefinitionNode) for definition in document.definitions)


def document_too_large(query: object, settings: Any) -> str | None:
    """The error for a GraphQL document (the query text, not its variables) over
    MAX_DOCUMENT_KB, checked before anything parses it. Under the 1 MB body cap a document can
    still be one huge comment or string: a single token, so the token limit does not stop it,
    and graphql-core's pure-Python lexer walks it character by character (a 1 MB comment took
    0.2–0.7 s of event loop). Real documents are a few KB."""
    limit = settings.max_document_kb * 1024
    if isinstance(query, str) and len(query) > limit:
        return (
            f"The GraphQL document is larger than the limit of {settings.max_document_kb} KB "
            "(MAX_DOCUMENT_KB); send values as variables."
        )
    return None


def _request_error(message: str) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message)])


def _request_error_status(result: ExecutionResult) -> int | None:
    """The HTTP status of a GraphQL *request error* (nothing executed: no data, no error with
    a path), or None for an executed operation (data, possibly partial, possibly null)."""
    errors = result.errors or []
    if result.data is not None or not errors or any(error.path for error in errors):
        return None
    codes = {(error.extensions or {}).get("code") for error in errors}
    if "INTERNAL_SERVER_ERROR" in codes:
        return 500
    if "DATABASE_UNAVAILABLE" in codes:
        return 503
    return 400


class RagqlTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with the document cap: an oversized `subscribe` gets an `error`."""

    def forget_id(self, id: str) -> None:
        # strawberry's `del self.operations[id]` raises KeyError when the client's `complete`
        # for the operation was handled first (the SPA stops a stream on its final event; the
        # stream ends on its own at the same moment): two "Exception in worker task"
        # tracebacks per chat. Already forgotten is fine.
        self.operations.pop(id, None)

    async def handle_subscribe(self, message: Any) -> None:
        payload = message.get("payload") if isinstance(message, dict) else None
        query = payload.get("query") if isinstance(payload, dict) else None
        if self.connection_acknowledged and (
            problem := document_too_large(query, self.context.state.settings)
        ):
            await self.send_message({"id": message["id"], "type": "error", "payload": [{"message": problem}]})
            return
        await super().handle_subscribe(message)


class RagqlWSHandler(BaseGraphQLWSHandler[Context, None]):
    """Legacy graphql-ws with the document cap: an oversized `start` gets an `error`."""

    async def handle_start(self, message: Any) -> None:
        payload = message.get("payload") if isinstance(message, dict) else None
        query = payload.get("query") if isinstance(payload, dict) else None
        if self.connection_acknowledged and (
            problem := document_too_large(query, self.context.state.settings)
        ):
            await self.send_message({"type": "error", "id": message["id"], "payload": {"message": problem}})
            return
        await super().handle_start(message)


class RagqlWebSocketAdapter(ASGIWebSocketAdapter):
    """strawberry's adapter plus a message-size cap (MAX_REQUEST_BODY_KB, like an HTTP body):
    a bigger message closes the socket with 1009, whatever the ASGI server's own frame limit."""

    def __init__(self, view: Any, request: WebSocket, response: WebSocket) -> None:
        super().__init__(view, request, response)
        settings = request.state.app_state.settings
        self.max_message_chars = settings.max_request_body_kb * 1024

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                try:
                    text = await self.ws.receive_text()
                    if len(text) > self.max_message_chars:
                        await self.ws.close(code=1009, reason="Message too big")
                        return
                    yield self.view.decode_json(text)
                except json.JSONDecodeError as error:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from error
        except KeyError as error:
            raise NonTextMessageReceived from error
        except WebSocketDisconnect:
            pass


class RagqlRequestAdapter(StarletteRequestAdapter):
    """Exposes the starlette request, so multipart bodies can be streamed."""

    @property
    def starlette_request(self) -> Request:
        return self._request


class RagqlGraphQL(GraphQL[Context, None]):
    request_adapter_class = RagqlRequestAdapter
    websocket_adapter_class = RagqlWebSocketAdapter
    graphql_transport_ws_handler_class = RagqlTransportWSHandler
    graphql_ws_handler_class = RagqlWSHandler

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
            if isinstance(request, Request):
                self._check_http_request(request)
            return await super().run(request, context, root_value)
        finally:
            # Uploaded files a resolver did not move into place (refused, duplicate,
            # failed request) are removed once the response is ready.
            for incoming in request.scope.get(INCOMING_FILES_SCOPE_KEY, ()):
                incoming.discard()

    # --- GraphQL over HTTP: media types, status codes, methods, request errors --------------

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self.run(request)
        except HTTPException as error:
            # strawberry answers these in text/plain; a GraphQL client expects a JSON error.
            response = self._error_response(request, error)
        await response(scope, receive, send)

    def _error_response(self, request: Request, error: HTTPException) -> Response:
        media_type = request.scope.get(MEDIA_TYPE_SCOPE_KEY) or (
            negotiate_media_type(request.headers.get("accept")) or APPLICATION_JSON
        )
        return Response(
            self.encode_json({"errors": [{"message": error.reason}]}),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
            media_type=f"{media_type}; charset=utf-8",
        )

    def _check_http_request(self, request: Request) -> None:
        """Before anything is read or authenticated: method, Accept and Content-Type."""
        method = request.method
        if method not in ("GET", "POST"):
            raise ProtocolError(
                405, f"{method} is not supported on /graphql: use GET or POST.", {"Allow": "GET, POST"}
            )
        if method == "GET" and self.should_render_graphql_ide(self.request_adapter_class(request)):
            return  # GraphiQL (an HTML page), not a GraphQL response
        media_type = negotiate_media_type(request.headers.get("accept"))
        if media_type is None:
            raise ProtocolError(
                406,
                f"Accept {GRAPHQL_RESPONSE_JSON} or {APPLICATION_JSON}: no other response type is served.",
            )
        request.scope[MEDIA_TYPE_SCOPE_KEY] = media_type
        if method == "POST":
            mime_type, params = parse_content_type(request.headers.get("content-type", ""))
            charset = params.get("charset", "utf-8").lower().replace("_", "-")
            if request.headers.get("content-type") is None or not (
                (mime_type == APPLICATION_JSON and charset in ("utf-8", "utf8"))
                or mime_type == "multipart/form-data"
            ):
                raise ProtocolError(
                    415,
                    "Send GraphQL requests as application/json (UTF-8), or multipart/form-data "
                    "for file uploads.",
                )

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        # create_response() only gets the sub-response: it carries the negotiated type there.
        sub_response.media_type = request.scope.get(MEDIA_TYPE_SCOPE_KEY)
        request.scope[SUB_RESPONSE_SCOPE_KEY] = sub_response
        return sub_response

    def parse_query_params(self, params: Any) -> dict[str, Any]:
        # GET: an empty parameter is an absent one (`operationName=` in particular, per the draft).
        return super().parse_query_params({key: value for key, value in dict(params).items() if value != ""})

    async def parse_http_body(self, request: Any) -> Any:
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData):
            if data.operation_name == "":
                data.operation_name = None
            if data.operation_name is not None and not isinstance(data.operation_name, str):
                raise HTTPException(400, "The GraphQL operation's `operationName` must be a string or null.")
        return data

    def decode_json(self, data: str | bytes) -> object:
        try:
            return json.loads(data)
        except RecursionError:
            # 100,000 nested brackets: Python's JSON decoder runs out of stack. A bad request
            # (400 over HTTP, "invalid message" over WebSocket), not a server error.
            raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return self.decode_json(data)
        except json.JSONDecodeError as error:
            raise HTTPException(400, f"Unable to parse request body as JSON: {error.msg}.") from error

    async def execute_single(  # type: ignore[override]
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: Context,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """strawberry's execute_single, with GraphQL request errors instead of text/plain 400s,
        405 for mutations over GET, and no subscriptions over HTTP."""
        method = request_adapter.method
        allowed = {OperationType.QUERY} if method == "GET" else {OperationType.QUERY, OperationType.MUTATION}
        query = request_data.query
        settings = context.state.settings
        if problem := document_too_large(query, settings):
            return _request_error(problem)
        if (
            request_data.operation_name is None
            and isinstance(query, str)
            and _may_define_two_operations(query)
            and _operation_count(query, settings.max_tokens) > 1
        ):
            # strawberry would run the first operation (even a mutation); GetOperation() says no.
            return _request_error(MULTIPLE_OPERATIONS)
        try:
            return await self.schema.execute(
                query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            return _request_error(error.as_http_error_reason())
        except InvalidOperationTypeError as error:
            if error.operation_type == OperationType.SUBSCRIPTION:
                return _request_error(SUBSCRIPTION_OVER_HTTP)
            # The draft: a mutation over GET MUST be answered 405.
            raise ProtocolError(
                405, "Mutations must be sent with POST, not GET.", {"Allow": "POST"}
            ) from error
        except MissingQueryError as error:
            raise HTTPException(400, "No GraphQL query found in the request.") from error

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        status = _request_error_status(result)
        if status is not None and request.scope.get(MEDIA_TYPE_SCOPE_KEY) == GRAPHQL_RESPONSE_JSON:
            # A request error: nothing executed, so no `data` entry and a 4xx/5xx status.
            # (application/json keeps the legacy 200 with "data": null.)
            response.pop("data", None)
            sub_response = request.scope.get(SUB_RESPONSE_SCOPE_KEY)
            if sub_response is not None and not sub_response.status_code:
                sub_response.status_code = status
        return response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        # super() labels every answer application/json; use the negotiated type.
        response.headers["content-type"] = f"{sub_response.media_type or APPLICATION_JSON}; charset=utf-8"
        return response

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
                max_field_bytes=settings.max_request_body_kb * 1024,
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
