"""The superadmin can always get back in: the generated password in a banner after start-up,
`ragql set-password EMAIL` on a running server, and a warning when SUPERADMIN_PASSWORD
differs from the stored password (issue 16). A real `ragql serve` process and the real CLI."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.graphql_client import post_graphql
from tests.serve_process import RAGQL, ServeProcess

EMAIL = "admin@localhost"
LOG_IN = (
    "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) "
    "{ __typename ... on AuthPayload { accessToken refreshToken } } }"
)
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { __typename } }"
ME = "{ me { email } }"


def _log_in(base_url: str, password: str) -> dict:
    return post_graphql(base_url, LOG_IN, {"e": EMAIL, "p": password}, timeout=30)["data"]["logIn"]


def _set_password(data_dir: Path, email: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAGQL, "set-password", email, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_generated_password_banner_set_password_and_ignored_superadmin_password() -> None:
    # Not pytest's tmp_path: as root, pgserver runs PostgreSQL as the `pgserver` user, which
    # must traverse every parent directory (see test_serve_restart.py).
    root = Path(tempfile.mkdtemp(prefix="ragql-set-password-"))
    data_dir = root / "data"
    try:
        first = ServeProcess(data_dir).start()
        try:
            output = first.output()
            banner = re.search(r"\|\s+password: (\S+)\s+\|", output)
            assert banner, output
            generated = banner.group(1)
            # The frame comes after uvicorn says it is listening, not among start-up lines.
            assert output.index("Uvicorn running on") < output.index("password: ")
            assert f"ragql set-password {EMAIL}" in output
            session = _log_in(first.base_url, generated)
            assert session["__typename"] == "AuthPayload"
            assert (
                post_graphql(first.base_url, ME, token=session["accessToken"], timeout=30)["data"]["me"][
                    "email"
                ]
                == EMAIL
            )

            # Unknown account, too-short password: refused, nothing changed.
            unknown = _set_password(data_dir, "nobody@example.com", "long-enough-secret-1\n")
            assert unknown.returncode == 1 and "nobody@example.com" in unknown.stderr
            weak = _set_password(data_dir, EMAIL, "short\n")
            assert weak.returncode == 2 and weak.stderr.strip()
            assert _log_in(first.base_url, generated)["__typename"] == "AuthPayload"

            # On the running server (the CLI shares the embedded PostgreSQL with it).
            changed = _set_password(data_dir, EMAIL.upper(), "recovered-secret-42\n")
            assert changed.returncode == 0, changed.stderr
            assert "password set for admin@localhost" in changed.stdout
            # Every session of the account ended: its access token and refresh token are dead.
            me = post_graphql(first.base_url, ME, token=session["accessToken"], timeout=30)
            assert me["data"]["me"] is None, me  # `me` answers null for a caller not signed in
            refreshed = post_graphql(first.base_url, REFRESH, {"t": session["refreshToken"]}, timeout=30)
            assert refreshed["data"]["refreshToken"]["__typename"] != "AuthPayload", refreshed
            assert _log_in(first.base_url, generated)["__typename"] != "AuthPayload"
            assert _log_in(first.base_url, "recovered-secret-42")["__typename"] == "AuthPayload"
            # The generated password is never printed to the log a second time, nor the new one.
            assert first.output().count(generated) == 1
            assert "recovered-secret-42" not in first.output()
        finally:
            assert first.stop() in (0, -15)

        second = ServeProcess(data_dir, env={"SUPERADMIN_PASSWORD": "some-other-secret-7"}).start()
        try:
            output = second.output()
            assert "superadmin created" not in output
            assert "SUPERADMIN_PASSWORD is set but differs" in output
            assert "some-other-secret-7" not in output
            # Warned, not applied.
            assert _log_in(second.base_url, "some-other-secret-7")["__typename"] != "AuthPayload"
            assert _log_in(second.base_url, "recovered-secret-42")["__typename"] == "AuthPayload"
        finally:
            assert second.stop() in (0, -15)

        third = ServeProcess(data_dir, env={"SUPERADMIN_PASSWORD": "recovered-secret-42"}).start()
        try:
            assert "SUPERADMIN_PASSWORD is set but differs" not in third.output()
        finally:
            assert third.stop() in (0, -15)
    finally:
        shutil.rmtree(root, ignore_errors=True)
