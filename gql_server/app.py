"""The starlette application: lifespan-owned resources, /graphql, /healthz, the SPA."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from gql_server.auth import service as auth_service
from gql_server.auth.passwords import PasswordHashing
from gql_server.auth.rate_limit import InMemoryAttemptWindows, LoginRateLimiter, RedisAttemptWindows
from gql_server.chat.generation import running_generation
from gql_server.database_setup import open_database
from gql_server.db.migrate import current_revision, head_revision
from gql_server.documents.downloads import download_route
from gql_server.events.bus import RedisEventBus, create_event_bus
from gql_server.graphql_view import DatabaseUnavailableError, RagqlGraphQL, database_unavailable_response
from gql_server.http_limits import RequestLimits
from gql_server.mcp_api.server import build_mcp_server, mcp_routes, running_mcp
from gql_server.monitoring import metrics_route, running_lag_monitor
from gql_server.oidc.client import OidcClient
from gql_server.oidc.routes import oidc_routes
from gql_server.openai_api.routes import openai_routes
from gql_server.schema import build_schema
from gql_server.security.encryption import ApiKeyCipher
from gql_server.security.headers import SecurityHeaders
from gql_server.settings import Settings
from gql_server.state import AppState
from gql_server.storage.file_sweeper import running_file_sweeper
from workers.runtime import running_ingestion

logger = logging.getLogger(__name__)

FRONTEND_DIST = Path(__file__).resolve().parents[1] / "frontend" / "dist"


@contextlib.asynccontextmanager
async def build_state(settings: Settings) -> AsyncIterator[AppState]:
    """Every resource of the process, built here in order and closed in reverse.

    The order matters: the database and the bus first (everything uses them), the
    superadmin before anything serves, then the background machinery — the event-loop lag
    monitor, the storage sweeper, ingestion (brokers, task resources, the re-enqueue of
    documents a killed process left half done), chat generation (which fails answers a
    previous process abandoned). Whatever needs one of them gets it from the typed
    AppState built last.
    """
    async with contextlib.AsyncExitStack() as stack:
        # open_database creates the data dir private (0700, files 0600) and tightens an existing one.
        database = await open_database(settings, migrate=settings.migrate_on_start)
        stack.push_async_callback(database.close)
        database.supervise_embedded()  # restarts the embedded PostgreSQL if its postmaster dies
        bus = create_event_bus(settings.redis_url)
        stack.push_async_callback(bus.close)
        passwords = PasswordHashing(settings.password_hashing_threads)
        stack.push_async_callback(passwords.aclose)
        windows = (
            RedisAttemptWindows(bus.redis) if isinstance(bus, RedisEventBus) else InMemoryAttemptWindows()
        )
        login_limiter = LoginRateLimiter(
            windows,
            per_account=settings.login_attempts_per_account,
            per_address=settings.login_attempts_per_address,
            window_seconds=settings.login_window_seconds,
        )
        cipher = ApiKeyCipher(settings.encryption_key_list())
        generated_password = await _ensure_superadmin(settings, database.sessionmaker, passwords)
        lag_monitor = await stack.enter_async_context(running_lag_monitor())
        file_sweeper = await stack.enter_async_context(
            running_file_sweeper(database.sessionmaker, database.engine, settings.files_dir)
        )
        ingestion = await stack.enter_async_context(
            running_ingestion(settings, database.engine, database.sessionmaker, bus)
        )
        generation = await stack.enter_async_context(
            running_generation(settings, database.sessionmaker, bus, cipher)
        )
        yield AppState(
            settings=settings,
            engine=database.engine,
            sessionmaker=database.sessionmaker,
            database_url=database.url,
            bus=bus,
            tokens=AppState.token_codec(settings),
            login_limiter=login_limiter,
            cipher=cipher,
            passwords=passwords,
            document_queue=ingestion.queue,
            ingestion=ingestion.resources,
            generation=generation,
            file_sweeper=file_sweeper,
            lag_monitor=lag_monitor,
            embedded_database=database.embedded,
            oidc=OidcClient(settings) if settings.oidc_enabled else None,
            generated_superadmin_password=generated_password,
        )


async def _ensure_superadmin(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], passwords: PasswordHashing
) -> str | None:
    """Create the superadmin on the first start; returns the password generated for it
    (None when SUPERADMIN_PASSWORD chose it, or it already existed)."""
    password = settings.superadmin_password.get_secret_value() if settings.superadmin_password else None
    async with sessionmaker.begin() as session:
        generated = await auth_service.ensure_superadmin(
            session, settings.superadmin_email, password, passwords
        )
        if generated is None and password:
            differs = await auth_service.configured_superadmin_password_differs(session, password, passwords)
            if differs:
                logger.warning(
                    "SUPERADMIN_PASSWORD is set but differs from the superadmin's stored password; "
                    "it is used only when the superadmin is first created and was NOT applied. "
                    "To change the password run: ragql set-password <email>"
                )
    return generated


def superadmin_banner(email: str, password: str) -> str:
    """The framed notice of a generated superadmin password, printed once after start-up."""
    lines = [
        "ragql superadmin created",
        "",
        f"  email:    {email}",
        f"  password: {password}",
        "",
        "Shown only this once. Sign in and change it, or set it again",
        f"at any time with:  ragql set-password {email}",
    ]
    width = max(len(line) for line in lines) + 2
    border = "+" + "-" * (width + 2) + "+"
    body = [f"| {line.ljust(width)} |" for line in lines]
    return "\n".join(["", border, *body, border, ""])


async def healthz(request: Request) -> Response:
    state: AppState = request.state.app_state
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        revision = await current_revision(state.engine)
    except Exception as error:
        logger.warning("health check failed: %s", error)
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    head = head_revision()
    ok = revision == head
    return JSONResponse(
        {
            "status": "ok" if ok else "error",
            "database": "ok",
            "migrations": "current" if ok else f"at {revision}, expected {head}",
            "mode": {
                "database": "embedded" if state.embedded_database else "external",
                "broker": "redis" if state.settings.redis_url else "in-process",
            },
        },
        status_code=200 if ok else 503,
    )


class SinglePageApp(StaticFiles):
    """Serve the built SPA, falling back to index.html for client-side routes."""

    async def get_response(self, path: str, scope: Any) -> Response:
        try:
            response = await super().get_response(path, scope)
        except Exception:
            response = None  # type: ignore[assignment]
        if response is None or response.status_code == 404:
            return FileResponse(Path(str(self.directory)) / "index.html")
        return response


async def _frontend_missing(request: Request) -> Response:
    return JSONResponse(
        {
            "message": "The web app is not built. Run `make serve` (it builds frontend/), "
            "or use the GraphQL API and GraphiQL at /graphql."
        },
        status_code=404,
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    schema = build_schema(settings)
    graphql_app = RagqlGraphQL(schema)
    # The MCP server at /mcp (gql_server/mcp_api): tools over the same services as GraphQL.
    mcp_server = build_mcp_server()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with build_state(settings) as state, running_mcp(mcp_server):
            app.state.app_state = state
            # Start-up objects (schema, models, modules) live for the whole process: move them
            # out of the garbage collector's generations so collections stay cheap under load.
            gc.freeze()
            # Streaming allocates many short-lived objects per token event; a higher
            # first-generation threshold makes young collections rarer (py-spy showed GC at
            # ~15 % of CPU under chat load).
            gc.set_threshold(50_000, 20, 20)
            if state.generated_superadmin_password and not getattr(app.state, "prints_banner", False):
                # Not run by `ragql serve` (which prints it once uvicorn listens): print it now.
                print(
                    superadmin_banner(settings.superadmin_email, state.generated_superadmin_password),
                    flush=True,
                )
            yield {"app_state": state}

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        # Every method reaches the view, which answers 405 with `Allow: GET, POST` for the
        # others (with a method list here, PUT/PATCH/DELETE fell through to the SPA mount).
        Route("/graphql", graphql_app),
        WebSocketRoute("/graphql", graphql_app),
    ]
    routes += [download_route(), metrics_route()]
    # The OpenAI-compatible API (GET /v1/models, POST /v1/chat/completions): openai_api/routes.py.
    routes.append(openai_routes())
    routes += mcp_routes(mcp_server)
    if settings.oidc_enabled:
        routes += oidc_routes(settings)
    if (FRONTEND_DIST / "index.html").exists():
        routes.append(Mount("/", app=SinglePageApp(directory=FRONTEND_DIST, html=True), name="frontend"))
    else:
        routes.append(Route("/", _frontend_missing))
    app = Starlette(routes=routes, lifespan=lifespan)
    # A database outage while authenticating: a GraphQL error with HTTP 503, not a bare 500.
    app.add_exception_handler(DatabaseUnavailableError, database_unavailable_response)
    # Body size (JSON vs multipart) and stall limits; see http_limits.py.
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_request_body_kb * 1024,
        max_upload_bytes=settings.max_upload_bytes,
        body_timeout_seconds=settings.request_body_timeout_seconds,
    )
    # Outermost (added last), so every response — 413s and errors included — carries the
    # browser defences (CSP, nosniff, framing, referrer); see security/headers.py.
    app.add_middleware(SecurityHeaders)
    return app
