"""Provider URLs and keys: which addresses ragql calls, redirects, and where a key may go.

Black-box through the API where the API can reach it (createModel, updateModel,
testModelConnection, chat), against fake providers on real HTTP; name resolution is
replaced where a test needs a name to resolve somewhere chosen (no DNS here), which is
the one thing outside ragql these tests control.
"""

from __future__ import annotations

import ast
import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import update

from gql_server.db.models import ProviderKind as DbProviderKind
from gql_server.db.models import RagModel
from gql_server.llm import url_policy
from gql_server.llm.base import ErrorKind, LLMProviderError, ProviderConfig, ProviderKind, TokenDelta
from gql_server.llm.registry import build_provider
from gql_server.llm.url_policy import UrlPolicy, address_refusal, url_origin
from gql_server.rag.prompt import build_generation_request
from gql_server.settings import Settings
from tests.chat_support import FAKES, chat_world, send_ok, start_session, stream_all
from tests.conftest import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, RunningServer, log_in, start_server
from tests.fake_llm_servers import (
    DEFAULT_MODEL_NAME,
    FakeBehaviour,
    FakeLLMServer,
    FakeOllamaServer,
    FakeOpenAIServer,
)
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

KEY = "sk-bound-" + uuid.uuid4().hex
kinds = pytest.mark.parametrize("kind", list(FAKES), ids=lambda kind: kind.value)

CREATE = """mutation($input: CreateModelInput!) { createModel(input: $input) {
  __typename ... on Model { id baseUrl apiKeySet }
  ... on InvalidInput { message fieldErrors { field message } } } }"""
UPDATE = """mutation($id: UUID!, $input: UpdateModelInput!) { updateModel(id: $id, input: $input) {
  __typename ... on Model { id baseUrl apiKeySet }
  ... on InvalidInput { message fieldErrors { field message } } } }"""
TEST_CONNECTION = """mutation($id: UUID!) { testModelConnection(modelId: $id) {
  __typename ... on ModelConnectionResult { ok message latencyMs reachable httpStatus modelFound } } }"""


@pytest_asyncio.fixture
async def strict_server(settings: Settings) -> AsyncIterator[RunningServer]:
    """The production default: private and loopback provider addresses refused."""
    strict = settings.model_copy(update={"allow_private_provider_urls": False})
    uvicorn_server, task, app, base_url = await start_server(strict)
    async with httpx.AsyncClient(timeout=60) as http:
        yield RunningServer(base_url, app, strict, GraphQLClient(base_url, http))
    uvicorn_server.should_exit = True
    await asyncio.wait_for(task, 30)


async def admin_of(server: RunningServer) -> GraphQLClient:
    return await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)


def field_errors(result: dict[str, Any]) -> dict[str, str]:
    assert result["__typename"] == "InvalidInput", result
    return {error["field"]: error["message"] for error in result["fieldErrors"]}


async def create(admin: GraphQLClient, **fields: Any) -> dict[str, Any]:
    data = await admin.execute(
        CREATE, {"input": {"name": f"m-{uuid.uuid4().hex[:8]}", "llmModelName": DEFAULT_MODEL_NAME, **fields}}
    )
    return dict(data["createModel"])


def fake_resolver(table: dict[str, list[str]]) -> Callable[[str, int], Any]:
    async def resolve(host: str, port: int) -> list[str]:
        return list(table[host.lower()])

    return resolve


def request_for_tests() -> Any:
    return build_generation_request(
        system_prompt=None,
        passages=[],
        history=[],
        question="Hi?",
        context_window_tokens=4096,
        max_output_tokens=64,
    )


def config(kind: ProviderKind, base_url: str, policy: UrlPolicy, **extra: Any) -> ProviderConfig:
    return ProviderConfig(
        kind=kind,
        model_name=DEFAULT_MODEL_NAME,
        base_url=base_url,
        api_key=extra.pop("api_key", KEY),
        temperature=0.2,
        max_output_tokens=64,
        request_timeout_s=5,
        connect_timeout_s=2,
        url_policy=policy,
        **extra,
    )


async def check(provider_config: ProviderConfig) -> Any:
    provider = build_provider(provider_config)
    try:
        return await provider.check_connection()
    finally:
        await provider.aclose()


async def stream_failure(provider_config: ProviderConfig) -> LLMProviderError:
    provider = build_provider(provider_config)
    try:
        with pytest.raises(LLMProviderError) as caught:
            async for _ in provider.stream(request_for_tests()):
                pass
    finally:
        await provider.aclose()
    return caught.value


def keys_received(fake: FakeLLMServer) -> list[str]:
    """Every credential header value the fake saw, whatever the provider's header name."""
    return [
        value
        for request in fake.requests
        for name, value in request.headers.items()
        if name in ("authorization", "x-api-key")
    ]


# --- addresses refused at validation -------------------------------------------------------

NEVER_ALLOWED = [
    "http://169.254.169.254/v1",  # the cloud metadata service
    "http://169.254.10.20:8000/v1",  # link-local
    "http://[fe80::1]:8000/v1",
    "http://[fd00:ec2::254]/v1",  # AWS metadata over IPv6 (inside fc00::/7)
    "http://100.100.100.200/v1",  # Alibaba metadata (inside 100.64/10)
    "http://[::ffff:169.254.169.254]/v1",  # the metadata address, IPv4-mapped
    "http://metadata.google.internal/v1",
    "http://0.0.0.0:11434/v1",
    "http://[::]:11434/v1",
    "http://224.0.0.1/v1",  # multicast
    "http://user:password@api.example.com/v1",  # credentials in the URL (refused before too)
    "ftp://api.example.com/v1",  # not http(s) (refused before too)
]


async def test_metadata_link_local_and_unspecified_addresses_are_refused_even_when_private_is_allowed(
    server: RunningServer,
) -> None:
    assert server.settings.allow_private_provider_urls
    admin = await admin_of(server)
    model = await create(admin, provider="OPENAI_COMPATIBLE", baseUrl="https://api.example.com/v1")
    assert model["__typename"] == "Model", model
    for url in NEVER_ALLOWED:
        result = await create(admin, provider="OPENAI_COMPATIBLE", baseUrl=url)
        assert "baseUrl" in field_errors(result), url
        # And an existing model cannot be pointed there either.
        updated = (await admin.execute(UPDATE, {"id": model["id"], "input": {"baseUrl": url}}))["updateModel"]
        assert "baseUrl" in field_errors(updated), url


PRIVATE = [
    ("OPENAI_COMPATIBLE", "http://127.0.0.1:8000/v1"),
    ("OPENAI_COMPATIBLE", "http://localhost:8000/v1"),
    ("OPENAI_COMPATIBLE", "http://LOCALHOST.:8000/v1"),
    ("OPENAI_COMPATIBLE", "http://[::1]:8000/v1"),
    ("OPENAI_COMPATIBLE", "http://10.1.2.3/v1"),
    ("OPENAI_COMPATIBLE", "http://172.16.0.9/v1"),
    ("OPENAI_COMPATIBLE", "http://192.168.1.20/v1"),
    ("OPENAI_COMPATIBLE", "http://100.64.0.1/v1"),  # carrier-grade NAT
    ("OPENAI_COMPATIBLE", "http://[fd12:3456::1]/v1"),
    ("OPENAI_COMPATIBLE", "http://2130706433:8000/v1"),  # 127.0.0.1 spelled as a number
    ("OLLAMA", None),  # the default, http://localhost:11434
]


async def test_loopback_and_private_addresses_need_the_setting(
    strict_server: RunningServer, server: RunningServer
) -> None:
    strict_admin, admin = await admin_of(strict_server), await admin_of(server)
    for provider, url in PRIVATE:
        fields = {"provider": provider, **({"baseUrl": url} if url else {})}
        refused = field_errors(await create(strict_admin, **fields))
        assert "ALLOW_PRIVATE_PROVIDER_URLS=true" in refused.get("baseUrl", ""), (url, refused)
        allowed = await create(admin, **fields)
        assert allowed["__typename"] == "Model", (url, allowed)


async def test_a_name_is_judged_by_what_it_resolves_to(
    strict_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        url_policy,
        "system_resolve",
        fake_resolver({"llm.corp.test": ["93.184.216.34", "10.0.0.7"], "api.public.test": ["93.184.216.34"]}),
    )
    admin = await admin_of(strict_server)
    # One private address among the answers is enough to refuse the name.
    errors = field_errors(
        await create(admin, provider="OPENAI_COMPATIBLE", baseUrl="http://llm.corp.test/v1")
    )
    assert "llm.corp.test resolves to" in errors["baseUrl"] and "10.0.0.7" in errors["baseUrl"]
    allowed = await create(admin, provider="OPENAI_COMPATIBLE", baseUrl="https://api.public.test/v1")
    assert allowed["__typename"] == "Model", allowed


async def test_the_real_resolver_is_used_for_names(strict_server: RunningServer) -> None:
    # ip6-localhost is not "localhost" but /etc/hosts (or the resolver) maps names like
    # it to loopback; whatever this machine's own host name resolves to is judged too.
    import socket

    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    admin = await admin_of(strict_server)
    result = await create(admin, provider="OPENAI_COMPATIBLE", baseUrl=f"http://{name}:8000/v1")
    if all(address_refusal(address, 8000, UrlPolicy()) for address in addresses):
        assert "baseUrl" in field_errors(result)
    else:  # a machine whose name resolves to a public address: that is allowed
        assert result["__typename"] == "Model", (addresses, result)


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")  # sync test under the module's asyncio mark
def test_ragql_s_own_address_and_origins() -> None:
    own = UrlPolicy(own_host="8.8.8.8", own_port=8000)
    assert "ragql itself" in (address_refusal("8.8.8.8", 8000, own) or "")
    assert address_refusal("8.8.8.8", 443, own) is None
    assert (
        address_refusal("8.8.8.8", 8000, UrlPolicy(allow_private=True, own_host="8.8.8.8", own_port=8000))
        is None
    )
    assert url_origin("HTTPS://API.Example.com/v1/") == "https://api.example.com:443"
    assert url_origin("http://[::1]/x") == "http://[::1]:80"
    assert url_origin("http://h:8080") == url_origin("http://h:8080/other/path")


# --- addresses refused when connecting (DNS rebinding) ------------------------------------


@kinds
async def test_a_name_rebound_to_a_refused_address_is_not_connected_to(kind: ProviderKind) -> None:
    async with FAKES[kind]().serve() as fake:
        port = int(fake.root_url.rsplit(":", 1)[1])
        name_url = fake.base_url.replace("127.0.0.1", "provider.test")
        # Private allowed, and the name resolves to the fake: the request goes to the checked
        # address and the server still sees the name it was asked for.
        permissive = UrlPolicy(allow_private=True, resolver=fake_resolver({"provider.test": ["127.0.0.1"]}))
        provider = build_provider(config(kind, name_url, permissive))
        try:
            tokens = [
                event async for event in provider.stream(request_for_tests()) if isinstance(event, TokenDelta)
            ]
        finally:
            await provider.aclose()
        assert tokens and fake.chat_requests()[-1].headers["host"] == f"provider.test:{port}"
        before = len(fake.requests)
        # The same name now answers with loopback while private addresses are refused, then
        # with the metadata address: neither is connected to.
        for policy in (
            UrlPolicy(resolver=fake_resolver({"provider.test": ["127.0.0.1"]})),
            UrlPolicy(allow_private=True, resolver=fake_resolver({"provider.test": ["169.254.169.254"]})),
        ):
            error = await stream_failure(config(kind, name_url, policy))
            assert error.kind is ErrorKind.CONNECTION
            assert "provider.test resolves to" in error.user_message, error.user_message
            result = await check(config(kind, name_url, policy))
            assert not result.ok and "resolves to" in result.message and not result.reachable
        assert len(fake.requests) == before


async def test_chat_answers_never_reach_a_refused_address(strict_server: RunningServer) -> None:
    # A row written before the policy existed (or behind its back) still cannot be used
    # to reach loopback: the check at connection time refuses it, for the shared Ollama
    # client and for the SDK-based providers alike.
    for kind in (DbProviderKind.OLLAMA, DbProviderKind.OPENAI_COMPATIBLE):
        fake = FAKES[ProviderKind[kind.name]](FakeBehaviour(tokens=["secret", " answer"]))
        async with fake.serve():
            world = await chat_world(
                strict_server,
                provider=kind,
                base_url=fake.base_url,
                llm_model_name=DEFAULT_MODEL_NAME,
                api_key=KEY,
            )
            session_id = await start_session(world.client, world.model.id)
            message_id = await send_ok(world.client, session_id, "Hi")
            events = await stream_all(world.client, message_id)
        assert events[-1]["__typename"] == "ErrorEvent", events
        assert fake.requests == [], kind


# --- redirects ------------------------------------------------------------------------------


@kinds
async def test_a_redirect_is_a_failure_and_is_not_followed(kind: ProviderKind) -> None:
    policy = UrlPolicy(allow_private=True)
    async with FAKES[kind]().serve() as elsewhere:
        target = elsewhere.base_url + ("/chat/completions" if kind is ProviderKind.OPENAI_COMPATIBLE else "")
        for status in (302, 307, 308):
            async with FAKES[kind](
                FakeBehaviour(redirect_to=target, redirect_status=status)
            ).serve() as front:
                error = await stream_failure(config(kind, front.base_url, policy))
                result = await check(config(kind, front.base_url, policy))
                assert front.requests, "the first server was asked"
            assert "ragql does not follow redirects" in error.user_message, error.user_message
            assert "ragql does not follow redirects" in result.message and result.status_code == status
            assert not result.ok and result.reachable
    assert elsewhere.requests == []


# --- the key stays with its origin ---------------------------------------------------------


async def test_changing_the_origin_needs_the_key_again_and_the_new_host_never_gets_the_old_key(
    server: RunningServer,
) -> None:
    admin = await admin_of(server)
    async with FakeOpenAIServer().serve() as first, FakeOpenAIServer().serve() as second:
        created = await create(admin, provider="OPENAI_COMPATIBLE", baseUrl=first.base_url, apiKey=KEY)
        model_id = created["id"]
        tested = (await admin.execute(TEST_CONNECTION, {"id": model_id}))["testModelConnection"]
        assert tested["ok"], tested
        assert f"Bearer {KEY}" in keys_received(first)

        moved = (await admin.execute(UPDATE, {"id": model_id, "input": {"baseUrl": second.base_url}}))[
            "updateModel"
        ]
        errors = field_errors(moved)
        assert "Enter the API key again when changing the provider's address" in errors["apiKey"], errors
        # Another path on the same origin keeps the key.
        same_origin = first.base_url + "/"
        kept = (await admin.execute(UPDATE, {"id": model_id, "input": {"baseUrl": same_origin}}))[
            "updateModel"
        ]
        assert kept["__typename"] == "Model" and kept["apiKeySet"], kept
        # A provider change that calls another origin is the same thing.
        provider_switch = (
            await admin.execute(UPDATE, {"id": model_id, "input": {"provider": "ANTHROPIC", "baseUrl": None}})
        )["updateModel"]
        assert "apiKey" in field_errors(provider_switch)

        # Behind the service's back (a row edited in SQL): the provider still refuses to
        # send the key anywhere but where it was entered.
        async with server.state.sessionmaker.begin() as session:
            await session.execute(
                update(RagModel).where(RagModel.id == uuid.UUID(model_id)).values(base_url=second.base_url)
            )
        tampered = (await admin.execute(TEST_CONNECTION, {"id": model_id}))["testModelConnection"]
        assert not tampered["ok"] and "Enter the API key again" in tampered["message"], tampered
        assert second.requests == []

        # With the key entered again, the new host gets the new key, never the old one.
        second_key = "sk-second-" + uuid.uuid4().hex
        entered = (
            await admin.execute(
                UPDATE, {"id": model_id, "input": {"baseUrl": second.base_url, "apiKey": second_key}}
            )
        )["updateModel"]
        assert entered["__typename"] == "Model", entered
        assert (await admin.execute(TEST_CONNECTION, {"id": model_id}))["testModelConnection"]["ok"]
        assert keys_received(second) == [f"Bearer {second_key}"]
        assert not any(KEY in value for value in keys_received(second))


async def test_a_key_stored_before_keys_were_bound_cannot_follow_the_model_either(
    server: RunningServer,
) -> None:
    admin = await admin_of(server)
    async with FakeOllamaServer().serve() as first, FakeOllamaServer().serve() as second:
        # Written as older versions did: no origin next to the key.
        world = await chat_world(
            server,
            provider=DbProviderKind.OLLAMA,
            base_url=first.base_url,
            llm_model_name=DEFAULT_MODEL_NAME,
            api_key=KEY,
        )
        model_id = str(world.model.id)
        moved = (await admin.execute(UPDATE, {"id": model_id, "input": {"baseUrl": second.base_url}}))[
            "updateModel"
        ]
        assert "apiKey" in field_errors(moved)
        cleared = (
            await admin.execute(
                UPDATE, {"id": model_id, "input": {"baseUrl": second.base_url, "clearApiKey": True}}
            )
        )["updateModel"]
        assert cleared["__typename"] == "Model" and not cleared["apiKeySet"], cleared
        assert (await admin.execute(TEST_CONNECTION, {"id": model_id}))["testModelConnection"]["ok"]
    assert keys_received(second) == []


@kinds
async def test_providers_never_send_a_key_to_another_origin(kind: ProviderKind) -> None:
    async with FAKES[kind]().serve() as elsewhere:
        bound = config(
            kind,
            elsewhere.base_url,
            UrlPolicy(allow_private=True),
            api_key_origin="https://api.example.com:443",
        )
        error = await stream_failure(bound)
        result = await check(bound)
    assert error.kind is ErrorKind.AUTHENTICATION and "Enter the API key again" in error.user_message
    assert not result.ok and "Enter the API key again" in result.message
    assert elsewhere.requests == []


# --- testModelConnection reports status, not bodies ------------------------------------------


@kinds
async def test_connection_test_reports_status_without_the_upstream_body(
    server: RunningServer, kind: ProviderKind
) -> None:
    admin = await admin_of(server)
    secret_body = "internal-service-token=tok_" + uuid.uuid4().hex + " model not found; db password hunter2"
    async with FAKES[kind](FakeBehaviour(forced_status=500, forced_body=secret_body)).serve() as fake:
        created = await create(admin, provider=kind.name, baseUrl=fake.base_url, apiKey=KEY)
        result = (await admin.execute(TEST_CONNECTION, {"id": created["id"]}))["testModelConnection"]
    assert result["__typename"] == "ModelConnectionResult"
    assert not result["ok"] and result["reachable"] and result["httpStatus"] == 500, result
    for fragment in ("tok_", "hunter2", "internal-service-token", "db password"):
        assert fragment not in result["message"], result["message"]
    assert fake.requests


async def test_connection_test_reports_reachability_status_and_model(server: RunningServer) -> None:
    admin = await admin_of(server)
    async with FakeOllamaServer().serve() as fake:
        found = await create(admin, provider="OLLAMA", baseUrl=fake.root_url)
        missing = await create(admin, provider="OLLAMA", baseUrl=fake.root_url, llmModelName="not-installed")
        found_result = (await admin.execute(TEST_CONNECTION, {"id": found["id"]}))["testModelConnection"]
        missing_result = (await admin.execute(TEST_CONNECTION, {"id": missing["id"]}))["testModelConnection"]
    assert found_result["ok"] and found_result["httpStatus"] == 200 and found_result["modelFound"] is True
    assert found_result["latencyMs"] is not None
    assert not missing_result["ok"] and missing_result["reachable"] and missing_result["modelFound"] is False
    closed = await create(admin, provider="OLLAMA", baseUrl=fake.root_url)  # the fake has stopped
    unreachable = (await admin.execute(TEST_CONNECTION, {"id": closed["id"]}))["testModelConnection"]
    assert not unreachable["ok"] and not unreachable["reachable"] and unreachable["httpStatus"] is None


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")
def test_the_openai_provider_uses_only_the_sdk_s_public_modules() -> None:
    source = Path(__file__).resolve().parents[1] / "gql_server" / "llm" / "openai_compatible.py"
    private = [
        node.module
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("openai._")
    ]
    assert private == []


# --- connecting by checked address keeps TLS intact -----------------------------------------


def _certificate_authority_and_leaf(directory: Path, leaf_name: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for `leaf_name` it signed (PEM files)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ragql test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, leaf_name)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(leaf_name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_path, cert_path, key_path


@pytest.mark.parametrize("stack", ["httpx", "httpx2"])
async def test_https_by_checked_address_sends_the_name_as_sni_and_verifies_the_certificate_for_it(
    tmp_path: Path, stack: str
) -> None:
    import ssl

    import httpx2

    from gql_server.llm.guarded_http import GuardedHttpx2Transport, GuardedHttpxTransport

    ca_path, cert_path, key_path = _certificate_authority_and_leaf(tmp_path, "provider.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    seen: list[tuple[str | None, str]] = []
    names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, context: names.append(name)  # type: ignore[assignment,misc,return-value]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        host = next(
            line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("host:")
        )
        seen.append((names[-1] if names else None, host))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = listener.sockets[0].getsockname()[1]
    client_context = ssl.create_default_context(cafile=str(ca_path))
    resolver = fake_resolver({"provider.test": ["127.0.0.1"], "wrong.test": ["127.0.0.1"]})
    policy = UrlPolicy(allow_private=True, resolver=resolver)
    client: Any
    if stack == "httpx":
        client = httpx.AsyncClient(
            transport=GuardedHttpxTransport(policy, limits=httpx.Limits(), verify=client_context)
        )
        tls_error: type[Exception] = httpx.ConnectError
    else:
        client = httpx2.AsyncClient(
            transport=GuardedHttpx2Transport(policy, limits=httpx2.Limits(), verify=client_context)
        )
        tls_error = httpx2.ConnectError
    try:
        async with client:
            response = await client.get(f"https://provider.test:{port}/api/tags")
            assert response.status_code == 200 and response.text == "ok"
            assert seen == [("provider.test", f"provider.test:{port}")]
            # The certificate is checked against the name, not skipped for the IP: another
            # name that resolves to the same server is refused by TLS.
            with pytest.raises(tls_error) as caught:
                await client.get(f"https://wrong.test:{port}/api/tags")
            assert "certificate" in str(caught.value).lower() or "hostname" in str(caught.value).lower()
    finally:
        listener.close()
        await listener.wait_closed()
