"""The `ragql` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gql_server.settings import Settings

if TYPE_CHECKING:
    import uvicorn


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir).expanduser()
    return Settings(**overrides)  # type: ignore[arg-type]


def trusted_proxy_list(settings: Settings) -> list[str]:
    return [entry.strip() for entry in settings.trusted_proxies.split(",") if entry.strip()]


def uvicorn_config(app: Any, settings: Settings, *, host: str, port: int) -> uvicorn.Config:
    """The uvicorn configuration of `ragql serve` (tests build their servers with it too)."""
    import uvicorn

    proxies = trusted_proxy_list(settings)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        # X-Forwarded-For/-Proto are believed only from TRUSTED_PROXIES. uvicorn's default
        # trusts 127.0.0.1, so any client on loopback could rotate its per-address log-in
        # limit with a made-up X-Forwarded-For; empty means trust nobody.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
        log_config=None,
        # uvicorn[standard]'s C event loop and HTTP parser: less CPU per socket event.
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        # A GraphQL message over WebSocket (connection_init, subscribe) is a request like an
        # HTTP body: the same cap instead of uvicorn's 16 MB default (bigger frames: 1009).
        ws_max_size=settings.max_request_body_kb * 1024,
        # Answers stream as many small frames; compressing each costs server CPU per token
        # and saves almost nothing on frames of a few dozen bytes.
        ws_per_message_deflate=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


def _banner_server_class() -> Any:
    import uvicorn

    class BannerServer(uvicorn.Server):
        """uvicorn's server, printing the generated superadmin password once start-up is
        complete (after "Uvicorn running on …"), where it is not lost among start-up lines."""

        def __init__(self, config: uvicorn.Config, app: Any, email: str) -> None:
            super().__init__(config)
            self._app = app
            self._email = email
            self._printed = False

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                self.print_banner()

        def print_banner(self) -> None:
            from gql_server.app import superadmin_banner

            state = getattr(self._app.state, "app_state", None)
            password = getattr(state, "generated_superadmin_password", None)
            if password and not self._printed:
                self._printed = True
                print(superadmin_banner(self._email, password), flush=True)

    return BannerServer


def _serve(args: argparse.Namespace) -> int:

    from gql_server.app import create_app
    from gql_server.logging_setup import configure_logging

    settings = _settings(args)
    if args.no_migrate:
        settings.migrate_on_start = False
    configure_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    config = uvicorn_config(
        app,
        settings,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
    )
    app.state.prints_banner = True
    server = _banner_server_class()(config, app, settings.superadmin_email)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    server.print_banner()  # start-up failed after the superadmin was created: still show it
    return 0 if server.started else 3  # uvicorn.run's STARTUP_FAILURE


def _worker(args: argparse.Namespace) -> int:
    from gql_server.logging_setup import configure_logging

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_json)
    if not settings.redis_url:
        print(
            "ragql worker needs REDIS_URL: without it, `ragql serve` runs the workers in-process.",
            file=sys.stderr,
        )
        return 2
    from workers.worker_main import run_worker

    # Without --concurrency, as many as INGEST_CONCURRENCY (by default derived from the cores).
    return run_worker(settings, concurrency=args.concurrency or settings.ingest_concurrency)


def _migrate(args: argparse.Namespace) -> int:
    from gql_server.database_setup import open_database

    async def run() -> None:
        database = await open_database(_settings(args), migrate=True)
        await database.close()

    asyncio.run(run())
    print("database migrated to head")
    return 0


def _create_superadmin(args: argparse.Namespace) -> int:
    from gql_server.auth.passwords import PasswordHashing, password_problem
    from gql_server.auth.service import ensure_superadmin
    from gql_server.database_setup import open_database

    settings = _settings(args)
    email = args.email or settings.superadmin_email
    configured = settings.superadmin_password.get_secret_value() if settings.superadmin_password else None
    password = args.password or configured or getpass.getpass("Password: ")
    if problem := password_problem(password, email):
        print(problem, file=sys.stderr)
        return 2

    async def run() -> str | None:
        database = await open_database(settings, migrate=True)
        try:
            with PasswordHashing(settings.password_hashing_threads) as passwords:
                async with database.sessionmaker.begin() as session:
                    await ensure_superadmin(session, email, password, passwords)
                from gql_server.auth.repository import get_superadmin

                existing = await get_superadmin(session)
                return existing.email if existing else None
        finally:
            await database.close()

    existing = asyncio.run(run())
    if existing and existing != email.lower():
        print(f"a superadmin already exists: {existing}", file=sys.stderr)
        return 1
    print(f"superadmin: {email}")
    return 0


def _read_new_password(email: str) -> str | None:
    """Twice at a terminal (a typo would lock the account out); one line from a pipe."""
    if sys.stdin.isatty():
        first = getpass.getpass(f"New password for {email}: ")
        if getpass.getpass("Repeat it: ") != first:
            print("the two passwords differ; nothing changed", file=sys.stderr)
            return None
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _set_password(args: argparse.Namespace) -> int:
    from gql_server.auth.passwords import PasswordHashing
    from gql_server.database_setup import open_database
    from gql_server.events.bus import create_event_bus, publish_access_changed
    from gql_server.events.kinds import AccessChanged, AccessChangeReason
    from gql_server.exceptions import DomainError, NotFoundError
    from gql_server.users.service import set_password

    settings = _settings(args)
    password = _read_new_password(args.email)
    if password is None:
        return 2
    if not password:
        print("no password given; nothing changed", file=sys.stderr)
        return 2

    async def run() -> int:
        database = await open_database(settings, migrate=False)
        try:
            with PasswordHashing(settings.password_hashing_threads) as passwords:
                try:
                    async with database.sessionmaker.begin() as session:
                        user = await set_password(session, passwords, args.email, password)
                        user_id, email = user.id, user.email
                except DomainError as error:
                    print(str(error), file=sys.stderr)
                    return 1 if isinstance(error, NotFoundError) else 2
            # Open WebSockets of that account close now, not at their next re-check (with
            # REDIS_URL the event reaches every API process; without it the servers' own
            # per-operation re-read of token_version ends them).
            bus = create_event_bus(settings.redis_url)
            try:
                await publish_access_changed(
                    bus, AccessChanged.of(AccessChangeReason.SESSIONS_REVOKED, user_ids=[user_id])
                )
            finally:
                await bus.close()
        finally:
            await database.close()
        print(f"password set for {email}; its sessions were signed out")
        return 0

    return asyncio.run(run())


def _export_schema(args: argparse.Namespace) -> int:
    from gql_server.schema import export_schema_sdl

    sdl = export_schema_sdl()
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        Path(args.output).write_text(sdl)
        print(f"wrote {args.output}")
    return 0


def _rotate_encryption_key(args: argparse.Namespace) -> int:
    from gql_server.security.rotation import rotate_encryption_key

    return asyncio.run(rotate_encryption_key(_settings(args), add_key=not args.reencrypt_only))


def _ingest(args: argparse.Namespace) -> int:
    from workers.ingest_cli import ingest_command

    return ingest_command(_settings(args), args.model, [Path(p) for p in args.paths], args.email)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragql", description="Self-hosted multi-user RAG chat server.")
    commands = parser.add_subparsers(dest="command", required=True)

    def with_data_dir(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--data-dir", help="where the embedded database, secrets and files live")
        return sub

    serve = with_data_dir(commands.add_parser("serve", help="run the API server (and in-process workers)"))
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate the database on start")
    serve.set_defaults(handler=_serve)

    worker = with_data_dir(commands.add_parser("worker", help="run a taskiq worker (needs REDIS_URL)"))
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="documents per lane at once (default: INGEST_CONCURRENCY)",
    )
    worker.set_defaults(handler=_worker)

    with_data_dir(commands.add_parser("migrate", help="migrate the database to head")).set_defaults(
        handler=_migrate
    )

    superadmin = with_data_dir(commands.add_parser("create-superadmin", help="create the superadmin"))
    superadmin.add_argument("--email")
    superadmin.add_argument("--password")
    superadmin.set_defaults(handler=_create_superadmin)

    set_pw = with_data_dir(
        commands.add_parser(
            "set-password",
            help="set an account's password (prompts, or reads one line from stdin); signs it out everywhere",
        )
    )
    set_pw.add_argument("email")
    set_pw.set_defaults(handler=_set_password)

    export = commands.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("--output", default="schema.graphql")
    export.set_defaults(handler=_export_schema)

    rotate = with_data_dir(
        commands.add_parser("rotate-encryption-key", help="add a new encryption key and re-encrypt API keys")
    )
    rotate.add_argument(
        "--reencrypt-only", action="store_true", help="only re-encrypt with the current newest key"
    )
    rotate.set_defaults(handler=_rotate_encryption_key)

    ingest = with_data_dir(commands.add_parser("ingest", help="ingest files into a model, with progress"))
    ingest.add_argument("model", help="model name or id")
    ingest.add_argument("paths", nargs="+")
    ingest.add_argument("--email", help="admin account to act as (default: the superadmin)")
    ingest.set_defaults(handler=_ingest)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Environment for the libraries, not settings of ours: huggingface_hub and transformers
    # read these once, at their first import (which any command may trigger), and the
    # bundled model must never be fetched from the Hub. gql_server/embedding/embedder.py
    # sets the same for code that imports it without this entry point.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    if args.command != "export-schema":  # the commands that write into the data dir
        # Every file this process creates (spool files, secrets, whatever a library writes)
        # is private to the owner; see gql_server/storage/permissions.py.
        from gql_server.storage.permissions import PROCESS_UMASK

        os.umask(PROCESS_UMASK)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
