"""The MCP server at /mcp: streamable HTTP through the official `mcp` SDK (MCPServer),
stateless with JSON responses, so every tool call is one authenticated POST.

Authentication is ragql's, in an ASGI wrapper in front of the SDK's endpoint: a personal
access token with the CHAT scope (or a log-in access token) as `Authorization: Bearer`,
read with the account on every request (gql_server/auth/bearer.py), so revoking the token
or deactivating the account stops it at once. Missing or refused: 401 (403 without CHAT),
in the JSON-RPC error shape. The SDK's DNS-rebinding check is off: nothing here rides on
cookies or on the caller's network position, every request carries its token.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import BaseRoute, Route

from gql_server.auth.bearer import authenticate_bearer
from gql_server.db.availability import DATABASE_UNAVAILABLE_MESSAGE, DatabaseUnavailable
from gql_server.db.models import AccessTokenScope, User
from gql_server.mcp_api import tools
from gql_server.state import AppState

USER_SCOPE_KEY = "ragql.mcp_user"
BASE_URL_SCOPE_KEY = "ragql.mcp_base_url"
MCP_PATH = "/mcp"


def _caller(ctx: Context) -> tuple[AppState, User, str]:
    request = ctx.request_context.request
    scope = getattr(request, "scope", None) or {}
    user = scope.get(USER_SCOPE_KEY)
    if user is None:  # the wrapper lets no unauthenticated request through
        raise ToolError("Not signed in.")
    return scope["state"]["app_state"], user, scope.get(BASE_URL_SCOPE_KEY, "")


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """A refusal (unknown model, empty query, failed answer) is the tool's error, in words;
    anything else stays the SDK's generic "Error executing tool"."""
    try:
        yield
    except tools.ToolRefusal as refusal:
        raise ToolError(str(refusal)) from None


def build_mcp_server() -> MCPServer:
    server: MCPServer = MCPServer(
        name="ragql",
        instructions="Search and ask the document collections (models) you may use in ragql. "
        "list_models gives their ids; search returns passages with their document, location and "
        "a download link; ask answers a question with [n] markers and its sources.",
    )

    @server.tool(description="The ragql models (document collections) you may use: id, name, description.")
    async def list_models(ctx: Context) -> list[dict[str, Any]]:
        state, user, _ = _caller(ctx)
        with _refusals():
            return await tools.list_models(state, user)

    @server.tool(
        description="Passages of a model's documents best matching the query (k: 1 to 50, default 5), "
        "each with its document, page or rows, score and a download link (valid 15 minutes)."
    )
    async def search(model: str, query: str, ctx: Context, k: int = tools.DEFAULT_K) -> list[dict[str, Any]]:
        state, user, base_url = _caller(ctx)
        with _refusals():
            return await tools.search(state, user, base_url, model, query, k)

    @server.tool(
        description="Answer a question from a model's documents (the same retrieval, prompt and "
        "model as the ragql chat). The answer cites sources as [n]; `sources` lists them."
    )
    async def ask(model: str, question: str, ctx: Context) -> dict[str, Any]:
        state, user, base_url = _caller(ctx)
        with _refusals():
            return await tools.ask(state, user, base_url, model, question)

    return server


def _refusal(status: int, message: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}}).encode()


def mcp_routes(server: MCPServer) -> list[BaseRoute]:
    """The SDK's streamable-HTTP endpoint at /mcp, behind ragql's bearer authentication."""
    sdk_app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    endpoint = next(route for route in sdk_app.routes if getattr(route, "path", None) == MCP_PATH)
    sdk_endpoint: Any = endpoint.app  # type: ignore[attr-defined]

    async def authenticate(scope: Any, receive: Any, send: Any) -> None:
        state: AppState = scope["state"]["app_state"]
        header = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1").strip()
        token = header[7:].strip() if header.lower().startswith("bearer ") else header
        status, message = 401, "Send `Authorization: Bearer <personal access token>` (ragql_pat_…)."
        user = None
        if token:
            try:
                identity = await authenticate_bearer(state.sessionmaker, state.tokens, token)
            except DatabaseUnavailable:
                status, message = 503, DATABASE_UNAVAILABLE_MESSAGE
            else:
                if identity.user is None:
                    message = identity.reason or "The access token is not valid."
                elif identity.personal_token is not None and not identity.personal_token.allows(
                    AccessTokenScope.CHAT
                ):
                    status, message = 403, "This personal access token does not have the CHAT scope."
                else:
                    user = identity.user
        if user is None:
            body = _refusal(status, message)
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if status == 401:
                headers.append((b"www-authenticate", b'Bearer realm="ragql"'))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        scheme = scope.get("scheme", "http")
        host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
        scope = {**scope, USER_SCOPE_KEY: user, BASE_URL_SCOPE_KEY: f"{scheme}://{host}" if host else ""}
        await sdk_endpoint(scope, receive, send)

    return [Route(MCP_PATH, _AsgiEndpoint(authenticate), methods=["GET", "POST", "DELETE"])]


class _AsgiEndpoint:
    """An ASGI callable as a Route endpoint (starlette wraps plain functions as request handlers)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def running_mcp(server: MCPServer) -> AsyncIterator[None]:
    """The SDK's session manager (its task group), for the app's lifespan."""
    async with server.session_manager.run():
        yield
