"""OIDC log-in and group sync against a real OpenID Provider (npm oidc-provider, a local
process: tests/oidc_provider/provider.mjs), driven over HTTP as a browser would: ragql's
/auth/oidc/login, the provider's authorization endpoint, its log-in and consent pages
(forms posted), the callback, the `/login#code=` fragment and exchangeLoginCode.

The provider's node_modules come from `make tests/oidc_provider/node_modules/.installed`
(run by `make test-python`); without them these tests fail and say so.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pytest
import pytest_asyncio
from joserfc.errors import JoseError
from pydantic import SecretStr
from sqlalchemy import select

from gql_server.db.models import AccessGroup, AuditLogEntry, User, UserIdentity
from gql_server.settings import Settings
from tests.conftest import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, RunningServer, log_in, serve_until_started
from tests.factories import create_model, create_user, grant_model
from tests.graphql_client import GraphQLClient

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
PROVIDER_HOST = "127.0.0.2"  # another loopback address: the IdP's cookies are not ragql's
CLIENT_ID = "ragql"
CLIENT_SECRET = "ragql-test-client-secret-0123456789"
OTHER_CLIENT_ID = "other-app"
OTHER_CLIENT_SECRET = "other-app-secret-0123456789"
ADMIN_GROUP = "ragql-admins"

EXCHANGE = """
mutation($code: String!) {
  exchangeLoginCode(code: $code) {
    __typename
    ... on AuthPayload { accessToken refreshToken user { id email role displayName } }
    ... on InvalidLoginCode { message }
  }
}
"""
AUTH_OPTIONS = "query { authOptions { oidcEnabled oidcDisplayName passwordLoginEnabled signUpEnabled } }"
MY_ACCESS = "query { me { id role } myGroups { name } models(first: 50) { items { name } } }"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


RAGQL_PORT = _free_port("127.0.0.1")
RAGQL_BASE = f"http://127.0.0.1:{RAGQL_PORT}"
CALLBACK = f"{RAGQL_BASE}/auth/oidc/callback"


@dataclass
class Provider:
    issuer: str
    accounts_file: Path
    process: subprocess.Popen[bytes] | None = None
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def set_account(self, account_id: str, **claims: Any) -> None:
        """Create or change an account at the IdP (read again at the next claims request)."""
        self.accounts[account_id] = claims
        self.accounts_file.write_text(json.dumps(self.accounts))

    def start(self) -> None:
        clients = [
            {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [CALLBACK]},
            {"client_id": OTHER_CLIENT_ID, "client_secret": OTHER_CLIENT_SECRET, "redirect_uris": [CALLBACK]},
        ]
        env = {
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "OIDC_TEST_ISSUER": self.issuer,
            "OIDC_TEST_CLIENTS": json.dumps(clients),
            "OIDC_TEST_ACCOUNTS": str(self.accounts_file),
        }
        node = shutil.which("node")
        assert node, "node is needed for the OpenID Provider of these tests"
        self.process = subprocess.Popen(
            [node, str(PROVIDER_DIR / "provider.mjs")],
            cwd=PROVIDER_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Ready once its discovery document answers (30 s at most).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the OpenID Provider exited at start"
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError("the OpenID Provider did not start within 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(
            "tests/oidc_provider/node_modules is missing: run `make tests/oidc_provider/node_modules/.installed`"
        )
    accounts_file = tmp_path_factory.mktemp("oidc") / "accounts.json"
    idp = Provider(issuer=f"http://{PROVIDER_HOST}:{_free_port(PROVIDER_HOST)}", accounts_file=accounts_file)
    idp.set_account("nobody", email="nobody@example.com", email_verified=True, name="Nobody", groups=[])
    idp.start()
    yield idp
    idp.stop()


def oidc_settings(settings: Settings, provider: Provider, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "oidc_issuer_url": provider.issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": SecretStr(CLIENT_SECRET),
        "oidc_admin_groups": ADMIN_GROUP,
        "oidc_display_name": "Test IdP",
        "login_attempts_per_account": 100,
        "login_attempts_per_address": 1000,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[RunningServer]:
    """The real app under uvicorn on RAGQL_PORT (the redirect URI registered at the IdP)."""
    import uvicorn

    from gql_server.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=RAGQL_PORT, lifespan="on", log_level="warning")
    server, task = await serve_until_started(config)
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            yield RunningServer(RAGQL_BASE, app, settings, GraphQLClient(RAGQL_BASE, http))
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@dataclass
class Flow:
    """How one browser log-in ended: the SPA fragment, and what the test saw on the way."""

    fragment: dict[str, str]
    callback_url: str | None = None
    cookies_before_callback: httpx.Cookies | None = None


def _tamper_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def browser_log_in(
    account: str,
    *,
    tamper_authorize: Callable[[str], str] | None = None,
    tamper_callback: Callable[[str], str] | None = None,
    start_url: str = f"{RAGQL_BASE}/auth/oidc/login",
    stop_at_callback: bool = False,
    cancel: bool = False,
) -> Flow:
    """Sign in as `account` in a fresh browser: every redirect followed by hand, the IdP's
    log-in and consent forms posted. Returns the fragment ragql redirected the SPA to (or,
    with stop_at_callback, just the callback URL the IdP sent the browser to)."""
    flow = Flow(fragment={})
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as browser:
        response = await browser.get(start_url)
        for _ in range(40):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(f"{RAGQL_BASE}/login#"):
                    flow.fragment = dict(parse_qsl(urlsplit(location).fragment))
                    return flow
                if tamper_authorize is not None and "/auth?" in location and "client_id=" in location:
                    location, tamper_authorize = tamper_authorize(location), None
                if location.startswith(CALLBACK):
                    if tamper_callback is not None:
                        location = tamper_callback(location)
                    flow.callback_url = location
                    flow.cookies_before_callback = httpx.Cookies(browser.cookies)
                    if stop_at_callback:
                        return flow
                response = await browser.get(location)
                continue
            assert response.status_code == 200, (response.status_code, response.text[:500])
            html = response.text
            action = re.search(r'<form[^>]*action="([^"]+)"', html)
            prompt = re.search(r'name="prompt" value="(\w+)"', html)
            assert action and prompt, html[:500]
            if cancel:  # the person cancels on the IdP's log-in page
                response = await browser.get(urljoin(str(response.url), action.group(1) + "/abort"))
                continue
            form = {"prompt": prompt.group(1)}
            if prompt.group(1) == "login":
                form |= {"login": account, "password": "any password"}
            response = await browser.post(urljoin(str(response.url), action.group(1)), data=form)
    raise AssertionError("the log-in did not come back to the SPA")


async def exchange(client: GraphQLClient, code: str) -> dict[str, Any]:
    return (await client.execute(EXCHANGE, {"code": code}))["exchangeLoginCode"]


async def sign_in(server: RunningServer, account: str) -> tuple[GraphQLClient, dict[str, Any]]:
    """A whole OIDC log-in: the API client it yields and the AuthPayload."""
    flow = await browser_log_in(account)
    assert "code" in flow.fragment, flow.fragment
    payload = await exchange(server.client, flow.fragment["code"])
    assert payload["__typename"] == "AuthPayload", payload
    return server.client.with_token(payload["accessToken"]), payload


async def _audit_actions(server: RunningServer, user_id: str) -> list[str]:
    async with server.state.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditLogEntry.action)
            .where(AuditLogEntry.actor_id == uuid.UUID(user_id))
            .order_by(AuditLogEntry.id)
        )
        return list(rows.all())


@pytest_asyncio.fixture
async def oidc_server(settings: Settings, provider: Provider) -> AsyncIterator[RunningServer]:
    async with running(oidc_settings(settings, provider)) as server:
        yield server


CREATE_SYNCED_GROUP = """
mutation($name: String!, $external: String) {
  createGroup(name: $name, externalName: $external) {
    __typename ... on AccessGroup { id name externalName lastSyncedAt } ... on Error { message }
  }
}
"""


@pytest.mark.asyncio(loop_scope="session")
async def test_new_user_is_created_synced_into_the_group_and_loses_it_when_the_idp_removes_it(
    oidc_server: RunningServer, provider: Provider
) -> None:
    server = oidc_server
    admin = await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    created = (await admin.execute(CREATE_SYNCED_GROUP, {"name": "Staff", "external": "staff"}))[
        "createGroup"
    ]
    assert created["__typename"] == "AccessGroup" and created["externalName"] == "staff", created
    assert created["lastSyncedAt"] is None
    async with server.state.sessionmaker() as session:
        group = await session.get(AccessGroup, uuid.UUID(created["id"]))
    model = await create_model(server.state.sessionmaker, "Staff handbook")
    await grant_model(server.state.sessionmaker, model, group=group)

    provider.set_account(
        "alice", email="Alice@Example.com", email_verified=True, name="Alice A", groups=["staff", "unrelated"]
    )
    alice, payload = await sign_in(server, "alice")
    assert payload["user"]["email"] == "alice@example.com"
    assert payload["user"]["displayName"] == "Alice A"
    assert payload["user"]["role"] == "USER"
    assert payload["refreshToken"], (
        "an API client without the cookie header gets the refresh token in the body"
    )
    seen = await alice.execute(MY_ACCESS)
    assert [group["name"] for group in seen["myGroups"]] == ["Staff"]
    assert [item["name"] for item in seen["models"]["items"]] == ["Staff handbook"]
    async with server.state.sessionmaker() as session:
        identity = (await session.scalars(select(UserIdentity))).one()
    assert (identity.issuer, identity.subject) == (provider.issuer, "alice")
    groups = (await admin.execute("query { accessGroups { items { name externalName lastSyncedAt } } }"))[
        "accessGroups"
    ]["items"]
    assert groups[0]["externalName"] == "staff" and groups[0]["lastSyncedAt"] is not None

    # Removed from the group at the IdP: the next log-in removes the membership, and the model with it.
    provider.set_account("alice", email="alice@example.com", email_verified=True, name="Alice A", groups=[])
    alice, payload = await sign_in(server, "alice")
    seen = await alice.execute(MY_ACCESS)
    assert seen["myGroups"] == []
    assert seen["models"]["items"] == []
    actions = await _audit_actions(server, payload["user"]["id"])
    assert actions == ["user.oidc_create", "group.sync_add_member", "group.sync_remove_member"], actions
    # The same person, the same account (linked by issuer and subject).
    async with server.state.sessionmaker() as session:
        assert len((await session.scalars(select(User).where(User.email == "alice@example.com"))).all()) == 1


@pytest.mark.asyncio(loop_scope="session")
async def test_the_admin_group_makes_an_admin_and_leaving_it_makes_a_user_again(
    oidc_server: RunningServer, provider: Provider
) -> None:
    provider.set_account(
        "bob", email="bob@example.com", email_verified=True, name="Bob", groups=[ADMIN_GROUP]
    )
    bob, payload = await sign_in(oidc_server, "bob")
    assert payload["user"]["role"] == "ADMIN"
    assert (await bob.execute("query { users(first: 5) { totalCount } }"))["users"]["totalCount"] >= 2
    provider.set_account("bob", email="bob@example.com", email_verified=True, name="Bob", groups=["staff"])
    bob, payload = await sign_in(oidc_server, "bob")
    assert payload["user"]["role"] == "USER"
    refused = await bob.raw("query { users(first: 5) { totalCount } }")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await _audit_actions(oidc_server, payload["user"]["id"]) == [
        "user.oidc_create",
        "user.promote",
        "user.demote",
    ]


@pytest.mark.asyncio(loop_scope="session")
async def test_the_superadmin_role_is_never_synced(settings: Settings, provider: Provider) -> None:
    # The superadmin's email at the IdP, linking allowed: linked, and still the superadmin
    # although the IdP puts it in no admin group.
    provider.set_account("root", email=SUPERADMIN_EMAIL, email_verified=True, name="Root", groups=[])
    async with running(oidc_settings(settings, provider, oidc_link_by_email=True)) as server:
        _, payload = await sign_in(server, "root")
        assert payload["user"]["role"] == "SUPERADMIN"
        assert payload["user"]["email"] == SUPERADMIN_EMAIL


@pytest.mark.asyncio(loop_scope="session")
async def test_the_login_code_works_once(oidc_server: RunningServer, provider: Provider) -> None:
    provider.set_account("carol", email="carol@example.com", email_verified=True, name="Carol", groups=[])
    flow = await browser_log_in("carol")
    code = flow.fragment["code"]
    assert (await exchange(oidc_server.client, code))["__typename"] == "AuthPayload"
    again = await exchange(oidc_server.client, code)
    assert again["__typename"] == "InvalidLoginCode", again
    assert (await exchange(oidc_server.client, "not-a-code"))["__typename"] == "InvalidLoginCode"


@pytest.mark.asyncio(loop_scope="session")
async def test_a_tampered_state_is_refused(oidc_server: RunningServer, provider: Provider) -> None:
    provider.set_account("dave", email="dave@example.com", email_verified=True, name="Dave", groups=[])
    flow = await browser_log_in("dave", tamper_callback=lambda url: _tamper_query(url, state="forged-state"))
    assert flow.fragment == {"error": "state_mismatch"}
    async with oidc_server.state.sessionmaker() as session:
        assert (await session.scalars(select(User).where(User.email == "dave@example.com"))).first() is None


@pytest.mark.asyncio(loop_scope="session")
async def test_a_replayed_authorization_code_is_refused(
    oidc_server: RunningServer, provider: Provider
) -> None:
    provider.set_account("erin", email="erin@example.com", email_verified=True, name="Erin", groups=[])
    flow = await browser_log_in("erin")
    assert "code" in flow.fragment
    assert flow.callback_url and flow.cookies_before_callback is not None
    # The same callback again, with the flow cookie as it was: the IdP refuses the used code.
    async with httpx.AsyncClient(cookies=flow.cookies_before_callback, follow_redirects=False) as browser:
        replay = await browser.get(flow.callback_url)
    assert replay.status_code == 303
    assert replay.headers["location"] == "/login#error=code_rejected"


@pytest.mark.asyncio(loop_scope="session")
async def test_a_nonce_changed_on_the_way_fails_the_id_token(
    oidc_server: RunningServer, provider: Provider
) -> None:
    provider.set_account("frank", email="frank@example.com", email_verified=True, name="Frank", groups=[])
    flow = await browser_log_in(
        "frank", tamper_authorize=lambda url: _tamper_query(url, nonce="attacker-nonce")
    )
    assert flow.fragment == {"error": "invalid_token"}


@pytest.mark.asyncio(loop_scope="session")
async def test_a_code_issued_to_another_client_is_refused(
    oidc_server: RunningServer, provider: Provider
) -> None:
    provider.set_account("gina", email="gina@example.com", email_verified=True, name="Gina", groups=[])
    flow = await browser_log_in(
        "gina", tamper_authorize=lambda url: _tamper_query(url, client_id=OTHER_CLIENT_ID)
    )
    assert flow.fragment == {"error": "code_rejected"}


@pytest.mark.asyncio(loop_scope="session")
async def test_a_deactivated_user_cannot_get_in(oidc_server: RunningServer, provider: Provider) -> None:
    provider.set_account("hank", email="hank@example.com", email_verified=True, name="Hank", groups=[])
    _, payload = await sign_in(oidc_server, "hank")
    async with oidc_server.state.sessionmaker.begin() as session:
        user = await session.get(User, uuid.UUID(payload["user"]["id"]))
        assert user is not None
        user.is_active = False
    flow = await browser_log_in("hank")
    assert flow.fragment == {"error": "account_deactivated"}


@pytest.mark.asyncio(loop_scope="session")
async def test_auto_create_off_refuses_an_unknown_person(settings: Settings, provider: Provider) -> None:
    provider.set_account("ivy", email="ivy@example.com", email_verified=True, name="Ivy", groups=[])
    async with running(oidc_settings(settings, provider, oidc_auto_create_users=False)) as server:
        flow = await browser_log_in("ivy")
        assert flow.fragment == {"error": "auto_create_disabled"}
        async with server.state.sessionmaker() as session:
            assert (
                await session.scalars(select(User).where(User.email == "ivy@example.com"))
            ).first() is None


@pytest.mark.asyncio(loop_scope="session")
async def test_an_existing_email_is_linked_only_when_allowed(settings: Settings, provider: Provider) -> None:
    provider.set_account("jane", email="jane@example.com", email_verified=True, name="Jane", groups=[])
    async with running(oidc_settings(settings, provider)) as server:
        local = await create_user(server.state.sessionmaker, "jane@example.com")
        flow = await browser_log_in("jane")
        assert flow.fragment == {"error": "account_exists"}
    provider.set_account("jane", email="jane@example.com", email_verified=False, name="Jane", groups=[])
    async with running(oidc_settings(settings, provider, oidc_link_by_email=True)) as server:
        flow = await browser_log_in("jane")
        assert flow.fragment == {"error": "account_exists"}, "an unverified email is never linked"
        provider.set_account("jane", email="jane@example.com", email_verified=True, name="Jane", groups=[])
        _, payload = await sign_in(server, "jane")
        assert payload["user"]["id"] == str(local.id)


@pytest.mark.asyncio(loop_scope="session")
async def test_bad_claims_are_refused_and_nothing_is_created(
    oidc_server: RunningServer, provider: Provider
) -> None:
    provider.set_account("kim", email="kim@example.com", email_verified=True, name="Kim", groups="staff")
    assert (await browser_log_in("kim")).fragment == {"error": "groups_claim_invalid"}
    provider.set_account("lou", email_verified=False, name="Lou", groups=[])
    assert (await browser_log_in("lou")).fragment == {"error": "email_missing"}
    async with oidc_server.state.sessionmaker() as session:
        assert (await session.scalars(select(UserIdentity))).all() == []
        assert (await session.scalars(select(User).where(User.email == "kim@example.com"))).first() is None


@pytest.mark.asyncio(loop_scope="session")
async def test_password_login_can_be_turned_off(settings: Settings, provider: Provider) -> None:
    provider.set_account("mia", email="mia@example.com", email_verified=True, name="Mia", groups=[])
    async with running(oidc_settings(settings, provider, password_login_enabled=False)) as server:
        options = (await server.client.execute(AUTH_OPTIONS))["authOptions"]
        assert options == {
            "oidcEnabled": True,
            "oidcDisplayName": "Test IdP",
            "passwordLoginEnabled": False,
            "signUpEnabled": False,
        }
        refused = await server.client.execute(
            'mutation { logIn(email: "root@example.com", password: "superadmin-password-1") { __typename } }'
        )
        assert refused["logIn"]["__typename"] == "PasswordLoginDisabled"
        signup = await server.client.execute(
            'mutation { signUp(email: "new@example.com", password: "new-password-1") { __typename } }'
        )
        assert signup["signUp"]["__typename"] == "SignUpDisabled"
        _, payload = await sign_in(server, "mia")
        assert payload["user"]["email"] == "mia@example.com"


@pytest.mark.asyncio(loop_scope="session")
async def test_an_unreachable_idp_says_so_and_password_login_still_works(settings: Settings) -> None:
    down = f"http://127.0.0.1:{_free_port('127.0.0.1')}"
    config = settings.model_copy(
        update={
            "oidc_issuer_url": down,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": SecretStr(CLIENT_SECRET),
        }
    )
    async with running(config) as server:
        async with httpx.AsyncClient(follow_redirects=False) as browser:
            response = await browser.get(f"{RAGQL_BASE}/auth/oidc/login")
        assert response.status_code == 303
        assert response.headers["location"] == "/login#error=idp_unavailable"
        assert (await server.client.execute(AUTH_OPTIONS))["authOptions"]["oidcEnabled"] is True
        await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)


@pytest.mark.asyncio(loop_scope="session")
async def test_auth_options_without_oidc(settings: Settings) -> None:
    async with running(settings) as server:
        options = (await server.client.execute(AUTH_OPTIONS))["authOptions"]
        assert options == {
            "oidcEnabled": False,
            "oidcDisplayName": None,
            "passwordLoginEnabled": True,
            "signUpEnabled": True,
        }


@pytest.mark.asyncio(loop_scope="session")
async def test_a_rotated_signing_key_is_fetched(oidc_server: RunningServer, provider: Provider) -> None:
    provider.set_account("nina", email="nina@example.com", email_verified=True, name="Nina", groups=[])
    await sign_in(oidc_server, "nina")
    jwks = oidc_server.state.oidc._app.server_metadata["jwks"]
    old_kids = {key["kid"] for key in jwks["keys"]}
    provider.stop()
    provider.start()  # a new signing key, same issuer
    await sign_in(oidc_server, "nina")
    new_kids = {key["kid"] for key in oidc_server.state.oidc._app.server_metadata["jwks"]["keys"]}
    assert new_kids and new_kids.isdisjoint(old_kids)


@pytest.mark.asyncio(loop_scope="session")
async def test_admins_set_and_clear_a_groups_external_name(oidc_server: RunningServer) -> None:
    admin = await log_in(oidc_server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    first = (await admin.execute(CREATE_SYNCED_GROUP, {"name": "One", "external": "idp-one"}))["createGroup"]
    second = (await admin.execute(CREATE_SYNCED_GROUP, {"name": "Two", "external": None}))["createGroup"]
    assert second["externalName"] is None
    change = """mutation($id: UUID!, $external: String) { setGroupExternalName(groupId: $id, externalName: $external) {
      __typename ... on AccessGroup { externalName } ... on AlreadyExists { field message } } }"""
    taken = (await admin.execute(change, {"id": second["id"], "external": "idp-one"}))["setGroupExternalName"]
    assert taken == {"__typename": "AlreadyExists", "field": "externalName", "message": taken["message"]}
    cleared = (await admin.execute(change, {"id": first["id"], "external": "  "}))["setGroupExternalName"]
    assert cleared == {"__typename": "AccessGroup", "externalName": None}
    moved = (await admin.execute(change, {"id": second["id"], "external": "idp-one"}))["setGroupExternalName"]
    assert moved == {"__typename": "AccessGroup", "externalName": "idp-one"}


async def _id_token_for(
    provider: Provider, client_id: str, secret: str, account: str, nonce: str
) -> dict[str, Any]:
    """A real token response of the provider for `client_id` (the test as that client's RP)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorize = f"{provider.issuer}/auth?" + urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "scope": "openid email profile",
            "redirect_uri": CALLBACK,
            "state": secrets.token_urlsafe(16),
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    flow = await browser_log_in(account, start_url=authorize, stop_at_callback=True)
    assert flow.callback_url is not None
    code = dict(parse_qsl(urlsplit(flow.callback_url).query))["code"]
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{provider.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "code_verifier": verifier,
            },
            auth=(client_id, secret),
        )
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.asyncio(loop_scope="session")
async def test_id_tokens_of_another_audience_tampered_or_another_nonce_are_refused(
    oidc_server: RunningServer, provider: Provider
) -> None:
    provider.set_account("omar", email="omar@example.com", email_verified=True, name="Omar", groups=[])
    client = oidc_server.state.oidc
    own = await _id_token_for(provider, CLIENT_ID, CLIENT_SECRET, "omar", "nonce-own")
    claims = await client.verify_id_token(own, "nonce-own")
    assert (claims["sub"], claims["aud"]) == ("omar", CLIENT_ID)
    # The same token, checked for another nonce.
    with pytest.raises(JoseError):
        await client.verify_id_token(own, "another-nonce")
    # One character of the signature changed.
    header, payload, signature = own["id_token"].split(".")
    flipped = ("A" if signature[10] != "A" else "B").join([signature[:10], signature[11:]])
    with pytest.raises(JoseError):
        await client.verify_id_token({**own, "id_token": f"{header}.{payload}.{flipped}"}, "nonce-own")
    # A genuine token of the same provider, issued to another client: not for us.
    foreign = await _id_token_for(provider, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, "omar", "nonce-foreign")
    with pytest.raises(JoseError, match="aud"):
        await client.verify_id_token(foreign, "nonce-foreign")


@pytest.mark.asyncio(loop_scope="session")
async def test_cancelling_at_the_idp_comes_back_as_access_denied(
    oidc_server: RunningServer, provider: Provider
) -> None:
    provider.set_account("pia", email="pia@example.com", email_verified=True, name="Pia", groups=[])
    flow = await browser_log_in("pia", cancel=True)
    assert flow.fragment == {"error": "access_denied"}
    assert flow.callback_url is not None and "error=access_denied" in flow.callback_url


@pytest.mark.asyncio(loop_scope="session")
async def test_an_expired_id_token_is_refused_and_nothing_is_created(
    oidc_server: RunningServer, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider's ID tokens live an hour: our clock (only the JWT claims check's, in this
    process) is moved past exp + the allowed leeway, so the real token of a real flow arrives
    expired at the callback. Refused with invalid_token; no account is created."""
    import time

    import joserfc._rfc7519.claims as jwt_claims

    from gql_server.oidc.client import ID_TOKEN_LEEWAY_SECONDS

    provider.set_account("eve", email="eve@example.com", email_verified=True, name="Eve", groups=[])
    fresh = await _id_token_for(provider, CLIENT_ID, CLIENT_SECRET, "eve", "nonce-eve")
    exp = int((await oidc_server.state.oidc.verify_id_token(fresh, "nonce-eve"))["exp"])
    assert exp > time.time()
    monkeypatch.setattr(jwt_claims, "_generate_now", lambda: exp + ID_TOKEN_LEEWAY_SECONDS + 1)
    with pytest.raises(JoseError, match="expired"):
        await oidc_server.state.oidc.verify_id_token(fresh, "nonce-eve")
    flow = await browser_log_in("eve")
    assert flow.fragment == {"error": "invalid_token"}
    async with oidc_server.state.sessionmaker() as session:
        assert (await session.scalars(select(User).where(User.email == "eve@example.com"))).first() is None
