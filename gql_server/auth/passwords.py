"""Argon2id password hashing and the password rule."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

PASSWORD_RULE = (
    "Passwords need at least 10 characters (at most 256), including at least one letter "
    "and at least one digit or symbol, and must not contain your email address."
)

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the account does not exist, so "unknown email" costs the same
# time as "wrong password" and the response time does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str, email: str | None = None) -> str | None:
    """Return why `password` breaks the rule, or None when it is acceptable."""
    if len(password) < 10 or len(password) > 256:
        return PASSWORD_RULE
    if not any(character.isalpha() for character in password):
        return PASSWORD_RULE
    if not any(not character.isalpha() for character in password):
        return PASSWORD_RULE
    if email and email.split("@")[0].lower() in password.lower() and len(email.split("@")[0]) >= 4:
        return PASSWORD_RULE
    return None
