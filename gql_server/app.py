"""The starlette application: lifespan-owned resources, /graphql, /healthz, the SPA."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from gql_server.auth import service as auth_service
from gql_server.auth.passwords import PasswordHashing
from gql_server.auth.rate_limit import InMemoryAttemptWindows, LoginRateLimiter, RedisAttemptWindows
from gql_server.database_setup import open_database
from gql_server.db.migrate import current_revision, head_revision
from gql_server.events.bus import RedisEventBus, create_event_bus
from gql_server.graphql_view import DatabaseUnavailableError, RagqlGraphQL, database_unavailable_response
from gql_server.http_limits import RequestLimits
from gql_server.schema import build_schema
from gql_server.security.encryption import ApiKeyCipher
from gql_server.security.headers import SecurityHeaders
from gql_server.settings import Settings
from gql_server.state import AppState

logger = logging.getLogger(__name__)

FRONTEND_DIST = Path(__file__).resolve().parents[1] / "frontend" / "dist"

# Domains that own background machinery (ingestion workers, generation tasks, file sweeper)
# register a lifespan hook: an async context manager factory taking the AppState.
LifespanHook = Callable[[AppState], contextlib.AbstractAsyncContextManager[None]]
LIFESPAN_HOOKS: list[LifespanHook] = []
# Extra routes (e.g. authenticated file downloads) contributed by domains.
EXTRA_ROUTES: list[Callable[[], BaseRoute]] = []


def _register_domain_hooks() -> None:
    """Import the domains that contribute hooks/routes (kept lazy to avoid import cycles)."""
    with contextlib.suppress(ModuleNotFoundError):
        import gql_server.lifespan_hooks  # noqa: F401


@contextlib.asynccontextmanager
async def build_state(settings: Settings) -> AsyncIterator[AppState]:
    # open_database creates the data dir private (0700, files 0600) and tightens an existing one.
    database = await open_database(settings, migrate=settings.migrate_on_start)
    database.supervise_embedded()  # restarts the embedded PostgreSQL if its postmaster dies
    bus = create_event_bus(settings.redis_url)
    windows = RedisAttemptWindows(bus.redis) if isinstance(bus, RedisEventBus) else InMemoryAttemptWindows()
    passwords = PasswordHashing(settings.password_hashing_threads)
    state = AppState(
        settings=settings,
        engine=database.engine,
        sessionmaker=database.sessionmaker,
        bus=bus,
        tokens=AppState.token_codec(settings),
        login_limiter=LoginRateLimiter(
            windows,
            per_account=settings.login_attempts_per_account,
            per_address=settings.login_attempts_per_address,
            window_seconds=settings.login_window_seconds,
        ),
        cipher=ApiKeyCipher(settings.encryption_key_list()),
        passwords=passwords,
        embedded_database=database.embedded,
    )
    state.extras["database_url"] = database.url
    try:
        async with database.sessionmaker.begin() as session:
            password = (
                settings.superadmin_password.get_secret_value() if settings.superadmin_password else None
            )
            generated = await auth_service.ensure_superadmin(
                session, settings.superadmin_email, password, passwords
            )
        if generated:
            # Printed once, on the first start only: the hash is all that is stored.
            print(
                f"\n  ragql superadmin created: {settings.superadmin_email} / password: {generated}\n"
                "  (shown once; set SUPERADMIN_PASSWORD to choose it yourself)\n",
                flush=True,
            )
        async with contextlib.AsyncExitStack() as stack:
            for hook in LIFESPAN_HOOKS:
                await stack.enter_async_context(hook(state))
            yield state
    finally:
        await passwords.aclose()
        await bus.close()
        await database.close()


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
    _register_domain_hooks()
    schema = build_schema(settings)
    graphql_app = RagqlGraphQL(schema)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with build_state(settings) as state:
            app.state.app_state = state
            # Start-up objects (schema, models, modules) live for the whole process: move them
            # out of the garbage collector's generations so collections stay cheap under load.
            gc.freeze()
            # Streaming allocates many short-lived objects per token event; a higher
            # first-generation threshold makes young collections rarer (py-spy showed GC at
            # ~15 % of CPU under chat load).
            gc.set_threshold(50_000, 20, 20)
            yield {"app_state": state}

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        # Every method reaches the view, which answers 405 with `Allow: GET, POST` for the
        # others (with a method list here, PUT/PATCH/DELETE fell through to the SPA mount).
        Route("/graphql", graphql_app),
        WebSocketRoute("/graphql", graphql_app),
    ]
    routes.extend(factory() for factory in EXTRA_ROUTES)
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
