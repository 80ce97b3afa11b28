"""Access tokens (short-lived JWTs, HS256 via joserfc) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

ISSUER = "ragql"
AUDIENCE = "ragql-api"


class InvalidToken(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AccessTokenClaims:
    user_id: uuid.UUID
    token_version: int
    expires_at: datetime


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    expires_at: datetime


class AccessTokenCodec:
    def __init__(self, secret: bytes, lifetime: timedelta) -> None:
        self._key = OctKey.import_key(secret)
        self._lifetime = lifetime

    def issue(self, user_id: uuid.UUID, token_version: int) -> IssuedAccessToken:
        now = int(time.time())
        expires = now + int(self._lifetime.total_seconds())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "iat": now,
            "exp": expires,
            "jti": secrets.token_urlsafe(12),
            "ver": token_version,
        }
        token = jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, self._key)
        return IssuedAccessToken(token=token, expires_at=datetime.fromtimestamp(expires, UTC))

    def decode(self, token: str) -> AccessTokenClaims:
        if not token or len(token) > 4096:
            raise InvalidToken("The access token is malformed.")
        try:
            decoded = jwt.decode(token, self._key, algorithms=["HS256"])
        except (JoseError, ValueError, TypeError) as error:
            raise InvalidToken("The access token is malformed or its signature is invalid.") from error
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": AUDIENCE},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as error:
            if "expire" in str(error).lower() or getattr(error, "error", "") == "expired_token":
                raise InvalidToken("The access token has expired; refresh it or log in again.") from error
            raise InvalidToken("The access token is not valid for this server.") from error
        try:
            return AccessTokenClaims(
                user_id=uuid.UUID(str(claims["sub"])),
                token_version=int(claims.get("ver", 0)),
                expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidToken("The access token is malformed.") from error


def new_refresh_token() -> str:
    return "rt_" + secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    # Refresh tokens are 256-bit random strings: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


def refresh_expiry(days: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)
