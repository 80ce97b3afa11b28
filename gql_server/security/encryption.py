"""Encryption of provider API keys at rest (Fernet / MultiFernet).

Keys come from ENCRYPTION_KEYS (comma separated, newest first) or, when unset, from
`<data dir>/encryption_keys` (created on first start, mode 0600). Rotation: put a new
key first (`ragql rotate-encryption-key` does it for the file), then re-encrypt every
stored value with the newest key; old keys can be removed afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class ApiKeyDecryptionError(Exception):
    """A stored key cannot be decrypted with any configured encryption key."""


class ApiKeyCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._keys = keys
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    @property
    def key_count(self) -> int:
        return len(self._keys)

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as error:
            raise ApiKeyDecryptionError(
                "A stored API key cannot be decrypted: the encryption key it was written with is "
                "no longer configured. Set the model's API key again."
            ) from error

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt with the newest key (MultiFernet.rotate keeps the original timestamp)."""
        return self._fernet.rotate(token)


def parse_keys(value: str) -> list[str]:
    return [key.strip() for key in value.replace("\n", ",").split(",") if key.strip()]


def load_key_file(path: Path) -> list[str]:
    if path.exists():
        return parse_keys(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return parse_keys(path.read_text())
    try:
        os.write(fd, (key + "\n").encode())
    finally:
        os.close(fd)
    return [key]


def prepend_key_to_file(path: Path) -> str:
    """Add a fresh key in front of the key file; returns the new key."""
    existing = load_key_file(path)
    key = Fernet.generate_key().decode()
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, ("\n".join([key, *existing]) + "\n").encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return key
