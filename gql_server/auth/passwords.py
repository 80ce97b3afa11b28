"""Argon2id password hashing and the password rule.

One Argon2id hash or verify costs 110-330 ms of CPU (time_cost 3, 64 MiB, 4 lanes; the
higher figure on a loaded 2-core machine). Run on the event loop, 30 concurrent log-ins
held `/healthz` for 6-7 s. So the server only ever hashes through `PasswordHashing`: a
bounded thread pool (PASSWORD_HASHING_THREADS) owned by the application lifespan.
argon2-cffi releases the GIL while hashing, so the loop keeps serving meanwhile; the
bounded pool turns a storm into a queue of waiting log-ins instead of a busy CPU per
request. The module-level functions are the blocking primitives the pool runs.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

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
    """Cheap (parses the hash's parameters): fine on the event loop."""
    return _hasher.check_needs_rehash(password_hash)


def _lower_thread_priority() -> None:
    # Hashing threads yield the CPU to the event loop thread when both want it: the loop's
    # work per request is short, a hash is long. Linux applies nice values per thread.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not permitted: a fair share is fine too
        pass


class PasswordHashing:
    """Hash and verify passwords in a bounded thread pool, never on the event loop.

    Created by the application lifespan (`build_state`) and by CLI commands that hash,
    closed when they end. Verifying an unknown account's password verifies against a dummy
    hash in the same pool, so "unknown email" costs the same as "wrong password".
    """

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="argon2", initializer=_lower_thread_priority
        )

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._executor, hash_password, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, verify_password, password_hash, password
        )

    def close(self) -> None:
        # Queued hashes of requests that are gone are dropped; running ones finish.
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def aclose(self) -> None:
        """close() without blocking the loop on a hash that is still running."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> PasswordHashing:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


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
