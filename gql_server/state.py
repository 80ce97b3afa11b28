"""Resources owned by the application lifespan and handed to requests and tasks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_server.auth.passwords import PasswordHashing
from gql_server.auth.rate_limit import LoginRateLimiter
from gql_server.auth.tokens import AccessTokenCodec
from gql_server.db.embedded import EmbeddedPostgres
from gql_server.events.bus import EventBus
from gql_server.security.encryption import ApiKeyCipher
from gql_server.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    bus: EventBus
    tokens: AccessTokenCodec
    login_limiter: LoginRateLimiter
    cipher: ApiKeyCipher
    # Argon2 hashing/verifying: a bounded thread pool, closed by the lifespan (auth/passwords.py).
    passwords: PasswordHashing
    embedded_database: EmbeddedPostgres | None = None
    # Filled by the domains that need them (ingestion, chat); typed loosely here to keep
    # this module free of imports from those packages.
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def token_codec(cls, settings: Settings) -> AccessTokenCodec:
        return AccessTokenCodec(settings.jwt_secret, timedelta(minutes=settings.access_token_minutes))
