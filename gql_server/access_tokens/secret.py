"""The secret of a personal access token: `ragql_pat_` + 32 random bytes (URL-safe base64).

Only its SHA-256 is stored: 256 random bits leave no dictionary to attack, so a fast hash is
enough (as for refresh tokens, gql_server/auth/tokens.py)."""

from __future__ import annotations

import secrets

from gql_server.auth.tokens import hash_refresh_token

PERSONAL_TOKEN_PREFIX = "ragql_pat_"
# 32 random bytes, URL-safe base64 without padding: 43 characters.
PERSONAL_TOKEN_SECRET_BYTES = 32
PERSONAL_TOKEN_LENGTH = len(PERSONAL_TOKEN_PREFIX) + 43
# What lists show of a token: the prefix and the first characters of its randomness.
PERSONAL_TOKEN_SHOWN_CHARACTERS = len(PERSONAL_TOKEN_PREFIX) + 6
_PERSONAL_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def new_personal_access_token() -> str:
    return PERSONAL_TOKEN_PREFIX + secrets.token_urlsafe(PERSONAL_TOKEN_SECRET_BYTES)


def is_personal_access_token(token: str) -> bool:
    """Whether a bearer token claims to be a personal access token (by its prefix)."""
    return token.startswith(PERSONAL_TOKEN_PREFIX)


def personal_token_is_well_formed(token: str) -> bool:
    return len(token) == PERSONAL_TOKEN_LENGTH and set(token[len(PERSONAL_TOKEN_PREFIX) :]) <= (
        _PERSONAL_TOKEN_ALPHABET
    )


def hash_personal_access_token(token: str) -> str:
    # 256 random bits, like refresh tokens: a fast hash is enough (no dictionary to attack).
    return hash_refresh_token(token)
