"""Every token and key the test run issues, and every log line it produces, checked at the end.

Issue 16: "secrets and tokens never in logs (a test greps the logs of a full test run for
every token and key it issued)". The run's logs are collected the way production writes them
(our formatter and redaction filter, at INFO) from the in-process servers, plus the output of
every `ragql serve` subprocess (tests/serve_process.py hands it over when it stops). The
secrets come from what the tests see: access and refresh tokens, personal access tokens and
signed download links in GraphQL responses (HTTP and WebSocket, through
tests/graphql_client.py), and the passwords and provider API keys the tests send as variables.
The session fixture in conftest.py fails the run (an error at teardown) if any is found.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gql_server.logging_setup import KeyValueFormatter, RedactSecretsFilter

# Response fields whose string values are secrets (and the URL query parameters that carry one).
SECRET_FIELDS = {"accesstoken", "refreshtoken", "secret", "token", "plaintext"}
SECRET_VARIABLES = {"password", "newpassword", "oldpassword", "apikey", "secret", "refreshtoken", "token"}
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-\.~+/=]{20,}$")
_URL_TOKEN = re.compile(r"[?&#](?:access_)?(?:token|code)=([^&\s\"'#]+)")
# Runs of token characters in a log: a token printed anywhere shows up as (part of) one.
_LOG_RUN = re.compile(r"[A-Za-z0-9_\-\.~+/=]{16,}")

_issued_tokens: set[str] = set()
_sent_secrets: set[str] = set()
_outputs: list[str] = []
_log_file: Path | None = None


def _walk(value: Any, key: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _walk(item, str(name))
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, key)
    elif isinstance(value, str):
        yield key.lower(), value


def remember_response(body: Any) -> None:
    """Note the secrets a GraphQL response hands out."""
    for key, value in _walk(body):
        if key in SECRET_FIELDS and _TOKEN_SHAPE.match(value):
            _issued_tokens.add(value)
        if "token=" in value or "code=" in value:
            _issued_tokens.update(match for match in _URL_TOKEN.findall(value) if len(match) >= 20)


def remember_variables(variables: Any) -> None:
    """Note the passwords and keys a test sends."""
    for key, value in _walk(variables):
        if key in SECRET_VARIABLES and len(value) >= 8:
            _sent_secrets.add(value)


def remember_output(text: str) -> None:
    """The whole output of a `ragql serve` (or worker) process."""
    _outputs.append(text)


def install_log_capture() -> None:
    """Write every record of this process, as production formats and redacts it, to a file."""
    global _log_file
    descriptor, name = tempfile.mkstemp(prefix="ragql-test-run-", suffix=".log")
    os.close(descriptor)
    _log_file = Path(name)
    handler = logging.FileHandler(name, encoding="utf-8")
    handler.setFormatter(KeyValueFormatter())
    handler.addFilter(RedactSecretsFilter())
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def leaks() -> tuple[list[str], int, int]:
    """(findings, how many secrets were checked, how many bytes of log)."""
    texts = list(_outputs)
    if _log_file is not None and _log_file.exists():
        for handler in logging.getLogger().handlers:
            handler.flush()
        texts.append(_log_file.read_text(encoding="utf-8", errors="replace"))
    findings: list[str] = []
    size = sum(len(text) for text in texts)
    for text in texts:
        for run in set(_LOG_RUN.findall(text)):
            candidates = {run, run.rstrip("."), *run.split("=")[1:]}
            for candidate in candidates & _issued_tokens:
                line = next((line for line in text.splitlines() if candidate in line), "")
                findings.append(f"issued token {candidate[:12]}… in a log line: {line[:300]}")
        for secret in _sent_secrets:
            if secret in text:
                line = next((line for line in text.splitlines() if secret in line), "")
                findings.append(f"a password/key the tests sent ({secret[:4]}…) in a log line: {line[:300]}")
    return findings, len(_issued_tokens) + len(_sent_secrets), size


def remove_log_file() -> None:
    if _log_file is not None:
        _log_file.unlink(missing_ok=True)
