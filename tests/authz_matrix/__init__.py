"""The authorization matrix: every Query, Mutation and Subscription field of the schema,
run as each of six actors against a real server, with the outcome asserted.

HOW TO ADD YOUR DOMAIN'S FIELDS
-------------------------------
Create `tests/authz_matrix/entries_<domain>.py` (auto-discovered) with a module-level
`ENTRIES: list[MatrixEntry]`. Each entry names one root field and says, per actor, which
`Outcome` is expected. A field in the schema without an entry fails the matrix test.

    from tests.authz_matrix import MatrixEntry, Outcome, World, expect, world_object

    @world_object("chat_session")            # objects of your domain, built lazily by name
    async def _chat_session(world: World) -> ChatSession:
        model = await world.get("model")     # the model `member` may use via a group grant
        ...

    ENTRIES = [
        MatrixEntry(
            field="chatSessions", kind="query",
            document="query { chatSessions { id } }",
            expect=expect.signed_in(),       # or expect.admin_only(), or Outcome per actor
        ),
        MatrixEntry(
            field="deleteChat", kind="mutation",
            document="mutation($id: UUID!) { deleteChat(id: $id) { __typename } }",
            # side effects? build a fresh object per actor run with world.fresh(name)
            variables=fresh_chat,  # async def fresh_chat(world, actor): return {"id": await world.id_of("chat_session", fresh=True)}
            expect=expect.per_actor(anonymous=Outcome.UNAUTHENTICATED, user=Outcome.HIDDEN, ...),
        ),
    ]

ACTORS (the world creates them once per test module)
  anonymous   no token
  user        a plain USER with no grants
  member      a plain USER in the group "member_group", which is granted the model "model"
  admin       an ADMIN
  superadmin  the bootstrapped SUPERADMIN
  chat_token  a personal access token with only the CHAT scope, of an ADMIN ("matrix-pat-admin"):
              whatever an administrator may use (every model, their own chats), but FORBIDDEN on
              administrative fields (@isAdmin, @isSuperadmin, @needsAdminScope) and on the
              fields that need a log-in session (@isInteractiveSession: tokens, password)

`expect.public()`, `signed_in()`, `admin_only()`, `superadmin_only()` and `model_users()` say
what `chat_token` gets (ALLOWED, ALLOWED, FORBIDDEN, FORBIDDEN, ALLOWED); an entry built with
`per_actor` or a dict names it too.

OUTCOMES (precisely; `value` is data[field] of the response)
  ALLOWED          no errors, `value` is not null, and if `value` has a __typename it is not
                   NotFound/Forbidden. (Typed InvalidInput/AlreadyExists/... count as allowed:
                   the caller got past authorization.) An entry's `check(value, world, actor)`
                   may assert more (e.g. which items a list contains).
  UNAUTHENTICATED  an error with extensions.code == "UNAUTHENTICATED" (for subscriptions
                   also: the connection_init was rejected).
  FORBIDDEN        an error with extensions.code == "FORBIDDEN".
  HIDDEN           "as if it did not exist": no errors and `value` is null, or `value` is a
                   typed NotFound result, or (for subscriptions, whose event types are not
                   unions) an error with extensions.code == "NOT_FOUND" — the same error a
                   missing object produces.
  REFUSED          a typed `Forbidden` result (__typename == "Forbidden").
Anything else (e.g. INTERNAL_SERVER_ERROR, a validation error) matches no outcome and fails.

Subscriptions run over graphql-transport-ws with the token in connection_init. The first
message decides; with `silent_means_allowed=True`, no message within
`subscription_timeout` seconds counts as ALLOWED (a subscription that waits for events),
otherwise `after_subscribe(world, actor, variables)` can trigger an event.

Tokens are issued for each operation from the actor's current row, so an entry that bumps
the caller's token version (changePassword) does not break later entries.
"""

from __future__ import annotations

import asyncio
import enum
import importlib
import inspect
import json
import pkgutil
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import websockets
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_server.access_tokens import service as access_token_service
from gql_server.auth.tokens import AccessTokenCodec
from gql_server.db.models import (
    AccessGroup,
    AccessTokenScope,
    ChatSession,
    Document,
    DocumentKind,
    DocumentStatus,
    GroupMembership,
    ModelAccessGrant,
    RagModel,
    Role,
    User,
)
from tests.factories import create_group, create_model, create_user, grant_model
from tests.graphql_client import GraphQLClient

OperationKind = Literal["query", "mutation", "subscription"]
ACTORS = ("anonymous", "user", "member", "admin", "superadmin", "chat_token")
ROOT_TYPES: dict[OperationKind, str] = {
    "query": "Query",
    "mutation": "Mutation",
    "subscription": "Subscription",
}


class Outcome(enum.Enum):
    ALLOWED = "ALLOWED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    HIDDEN = "HIDDEN"
    REFUSED = "REFUSED"


VariablesBuilder = Callable[["World", str], Awaitable[dict[str, Any]] | dict[str, Any]]
Check = Callable[[Any, "World", str], Awaitable[None] | None]


@dataclass(frozen=True)
class MatrixEntry:
    field: str
    kind: OperationKind
    document: str
    expect: Mapping[str, Outcome]
    variables: VariablesBuilder | None = None
    check: Check | None = None
    # A label when one field has several entries (e.g. "own model" / "foreign model").
    case: str = ""
    subscription_timeout: float = 3.0
    silent_means_allowed: bool = False
    after_subscribe: Callable[[World, str, dict[str, Any]], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        missing = [actor for actor in ACTORS if actor not in self.expect]
        if missing:
            raise ValueError(f"matrix entry {self.kind} {self.field}: no expected outcome for {missing}")

    @property
    def key(self) -> tuple[OperationKind, str]:
        return (self.kind, self.field)

    @property
    def label(self) -> str:
        return f"{self.kind}.{self.field}" + (f"[{self.case}]" if self.case else "")


class _Expect:
    """Common expectation shapes."""

    @staticmethod
    def per_actor(**outcomes: Outcome) -> dict[str, Outcome]:
        return dict(outcomes)

    @staticmethod
    def public() -> dict[str, Outcome]:
        return dict.fromkeys(ACTORS, Outcome.ALLOWED)

    @staticmethod
    def signed_in() -> dict[str, Outcome]:
        return {**dict.fromkeys(ACTORS, Outcome.ALLOWED), "anonymous": Outcome.UNAUTHENTICATED}

    @staticmethod
    def admin_only() -> dict[str, Outcome]:
        return {
            "anonymous": Outcome.UNAUTHENTICATED,
            "user": Outcome.FORBIDDEN,
            "member": Outcome.FORBIDDEN,
            "admin": Outcome.ALLOWED,
            "superadmin": Outcome.ALLOWED,
            # The token's owner is an administrator, but CHAT does not reach these fields.
            "chat_token": Outcome.FORBIDDEN,
        }

    @staticmethod
    def superadmin_only() -> dict[str, Outcome]:
        return {**_Expect.admin_only(), "admin": Outcome.FORBIDDEN}

    @staticmethod
    def model_users(denied: Outcome = Outcome.HIDDEN) -> dict[str, Outcome]:
        """Whoever may use "model": member and admins; a plain user gets `denied`."""
        return {
            "anonymous": Outcome.UNAUTHENTICATED,
            "user": denied,
            "member": Outcome.ALLOWED,
            "admin": Outcome.ALLOWED,
            "superadmin": Outcome.ALLOWED,
            "chat_token": Outcome.ALLOWED,  # an administrator's token: every model
        }


expect = _Expect()

# ----------------------------------------------------------------------------- the world

WorldBuilder = Callable[["World"], Awaitable[Any]]
WORLD_OBJECTS: dict[str, WorldBuilder] = {}


def world_object(name: str) -> Callable[[WorldBuilder], WorldBuilder]:
    """Register how to build a named world object (built lazily, once for `get`)."""

    def register(builder: WorldBuilder) -> WorldBuilder:
        if name in WORLD_OBJECTS and WORLD_OBJECTS[name] is not builder:
            raise ValueError(f"world object {name!r} is registered twice")
        WORLD_OBJECTS[name] = builder
        return builder

    return register


@dataclass
class World:
    sessionmaker: async_sessionmaker[AsyncSession]
    codec: AccessTokenCodec
    client: GraphQLClient
    settings: Any
    users: dict[str, User] = field(default_factory=dict)
    # The CHAT-scoped personal access token of users["chat_token"], created on first use.
    chat_token: str | None = None
    _objects: dict[str, Any] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def get(self, name: str) -> Any:
        """The shared object `name`, built on first use."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name not in self._objects:
                self._objects[name] = await self._build(name)
        return self._objects[name]

    async def fresh(self, name: str) -> Any:
        """A new object `name` (for mutations that change or delete what they touch)."""
        return await self._build(name)

    async def _build(self, name: str) -> Any:
        builder = WORLD_OBJECTS.get(name)
        if builder is None:
            raise KeyError(f"no world object {name!r}; register one with @world_object({name!r})")
        return await builder(self)

    async def id_of(self, name: str, *, fresh: bool = False) -> str:
        obj = await (self.fresh(name) if fresh else self.get(name))
        return str(obj.id)

    async def client_for(self, actor: str) -> GraphQLClient:
        token = await self.token_for(actor)
        return self.client.with_token(token)

    async def token_for(self, actor: str) -> str | None:
        if actor == "anonymous":
            return None
        if actor == "chat_token":
            return await self._chat_token()
        async with self.sessionmaker() as session:
            user = await session.get(User, self.users[actor].id)
        assert user is not None
        return self.codec.issue(user.id, user.token_version).token

    async def _chat_token(self) -> str:
        lock = self._locks.setdefault("chat_token", asyncio.Lock())
        async with lock:
            if self.chat_token is None:
                async with self.sessionmaker.begin() as session:
                    created = await access_token_service.create_token(
                        session,
                        self.users["chat_token"],
                        name="authorization matrix",
                        expires_at=None,
                        scopes=[AccessTokenScope.CHAT],
                    )
                self.chat_token = created.secret
        return self.chat_token


async def build_world(
    sessionmaker: async_sessionmaker[AsyncSession],
    codec: AccessTokenCodec,
    client: GraphQLClient,
    settings: Any,
) -> World:
    from sqlalchemy import select

    world = World(sessionmaker=sessionmaker, codec=codec, client=client, settings=settings)
    async with sessionmaker() as session:
        superadmin = (await session.execute(select(User).where(User.role == Role.SUPERADMIN))).scalar_one()
    world.users = {
        "user": await create_user(sessionmaker, "matrix-user@example.com"),
        "member": await create_user(sessionmaker, "matrix-member@example.com"),
        "admin": await create_user(sessionmaker, "matrix-admin@example.com", Role.ADMIN),
        "superadmin": superadmin,
        "chat_token": await create_user(sessionmaker, "matrix-pat-admin@example.com", Role.ADMIN),
    }
    return world


# --------------------------------------------------------------- built-in world objects


@world_object("member_group")
async def _member_group(world: World) -> AccessGroup:
    return await create_group(world.sessionmaker, "matrix member group", members=[world.users["member"]])


@world_object("model")
async def _model(world: World) -> RagModel:
    """The model `member` may use (through "member_group"); `user` may not."""
    model = await create_model(world.sessionmaker, "matrix model")
    await grant_model(world.sessionmaker, model, group=await world.get("member_group"))
    return model


@world_object("foreign_model")
async def _foreign_model(world: World) -> RagModel:
    """A model nobody but administrators may use."""
    return await create_model(world.sessionmaker, f"foreign model {uuid.uuid4().hex[:6]}")


@world_object("group")
async def _group(world: World) -> AccessGroup:
    return await create_group(world.sessionmaker, f"group {uuid.uuid4().hex[:8]}")


@world_object("plain_user")
async def _plain_user(world: World) -> User:
    return await create_user(world.sessionmaker)


@world_object("admin_user")
async def _admin_user(world: World) -> User:
    return await create_user(world.sessionmaker, role=Role.ADMIN)


@world_object("group_with_member")
async def _group_with_member(world: World) -> AccessGroup:
    group = await create_group(world.sessionmaker, f"group {uuid.uuid4().hex[:8]}")
    user = await world.fresh("plain_user")
    async with world.sessionmaker.begin() as session:
        session.add(GroupMembership(group_id=group.id, user_id=user.id))
    group.matrix_member_id = user.id  # type: ignore[attr-defined]
    return group


@world_object("model_with_group_grant")
async def _model_with_group_grant(world: World) -> RagModel:
    model = await create_model(world.sessionmaker)
    group = await world.fresh("group")
    await grant_model(world.sessionmaker, model, group=group)
    model.matrix_group_id = group.id  # type: ignore[attr-defined]
    return model


@world_object("document")
async def _document(world: World) -> Document:
    """A ready document (no stored file) in "model"."""
    model = await world.get("model")
    async with world.sessionmaker.begin() as session:
        document = Document(
            model_id=model.id,
            filename="matrix.txt",
            title="matrix",
            kind=DocumentKind.TEXT,
            size_bytes=5,
            sha256=uuid.uuid4().hex + uuid.uuid4().hex,
            status=DocumentStatus.READY,
            progress=1.0,
        )
        session.add(document)
    return document


@world_object("chat_session")
async def _chat_session(world: World) -> ChatSession:
    """`member`'s active chat on "model" (chats are private to their owner)."""
    model = await world.get("model")
    async with world.sessionmaker.begin() as session:
        chat = ChatSession(user_id=world.users["member"].id, model_id=model.id, title="matrix chat")
        session.add(chat)
    return chat


# ---------------------------------------------------------------------------- discovery


def load_entries() -> list[MatrixEntry]:
    """Every `ENTRIES` of every `tests/authz_matrix/entries_*.py` module."""
    entries: list[MatrixEntry] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if not module_info.name.startswith("entries_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        entries.extend(getattr(module, "ENTRIES", []))
    return entries


def schema_fields(schema: Any) -> set[tuple[OperationKind, str]]:
    """Every root field of the schema, by introspection of the built schema."""
    fields: set[tuple[OperationKind, str]] = set()
    for kind, type_name in ROOT_TYPES.items():
        root = schema._schema.get_type(type_name)
        if root is None:
            continue
        fields.update((kind, name) for name in root.fields)
    return fields


# ------------------------------------------------------------------------------ running


@dataclass
class Observation:
    value: Any = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    rejected: bool = False  # subscription connection refused at connection_init
    silent: bool = False  # subscription sent nothing within the timeout
    raw: Any = None

    def describe(self) -> str:
        return json.dumps(
            {"value": self.value, "errors": self.errors, "rejected": self.rejected, "silent": self.silent},
            default=str,
        )[:600]


def _codes(observation: Observation) -> set[str]:
    return {str((error.get("extensions") or {}).get("code")) for error in observation.errors}


def classify(observation: Observation, entry: MatrixEntry) -> Outcome | None:
    codes = _codes(observation)
    if observation.rejected or "UNAUTHENTICATED" in codes:
        return Outcome.UNAUTHENTICATED
    if "FORBIDDEN" in codes:
        return Outcome.FORBIDDEN
    if codes == {"NOT_FOUND"}:
        return Outcome.HIDDEN
    if observation.errors:
        return None
    if observation.silent:
        return Outcome.ALLOWED if entry.silent_means_allowed else None
    value = observation.value
    if value is None:
        return Outcome.HIDDEN
    typename = value.get("__typename") if isinstance(value, dict) else None
    if typename == "NotFound":
        return Outcome.HIDDEN
    if typename == "Forbidden":
        return Outcome.REFUSED
    return Outcome.ALLOWED


async def _variables(entry: MatrixEntry, world: World, actor: str) -> dict[str, Any]:
    if entry.variables is None:
        return {}
    result = entry.variables(world, actor)
    if inspect.isawaitable(result):
        result = await result
    return dict(result)


async def observe(entry: MatrixEntry, world: World, actor: str) -> tuple[Observation, dict[str, Any]]:
    variables = await _variables(entry, world, actor)
    if entry.kind != "subscription":
        client = await world.client_for(actor)
        body = await client.raw(entry.document, variables)
        data = body.get("data") or {}
        return Observation(value=data.get(entry.field), errors=body.get("errors") or [], raw=body), variables
    return await _observe_subscription(entry, world, actor, variables), variables


async def _observe_subscription(
    entry: MatrixEntry, world: World, actor: str, variables: dict[str, Any]
) -> Observation:
    token = await world.token_for(actor)
    try:
        async with world.client.subscription_connection(token=token or "") as connection:
            operation_id = await connection.subscribe(entry.document, variables)
            if entry.after_subscribe is not None:
                await entry.after_subscribe(world, actor, variables)
            try:
                message = await connection.next_message(timeout=entry.subscription_timeout)
            except TimeoutError:
                await connection.stop(operation_id)
                return Observation(silent=True)
            if message["type"] == "error":
                payload = message.get("payload")
                errors = payload if isinstance(payload, list) else [payload]
                return Observation(errors=errors, raw=message)
            if message["type"] in ("next", "data"):
                payload = message.get("payload") or {}
                data = payload.get("data") or {}
                await connection.stop(operation_id)
                return Observation(
                    value=data.get(entry.field), errors=payload.get("errors") or [], raw=message
                )
            return Observation(silent=True, raw=message)  # completed without a result
    except websockets.exceptions.ConnectionClosed as closed:
        # graphql-transport-ws closes with 4403 "Forbidden" when connection_init is refused.
        return Observation(rejected=True, raw=str(closed))
    except AssertionError as error:  # connection not acknowledged
        return Observation(rejected=True, raw=str(error))


async def run_entry(entry: MatrixEntry, world: World) -> list[str]:
    """Run the entry as every actor; returns the mismatches (empty when all is as expected)."""
    problems = []
    for actor in ACTORS:
        expected = entry.expect[actor]
        observation, variables = await observe(entry, world, actor)
        actual = classify(observation, entry)
        if actual is not expected:
            problems.append(
                f"{entry.label} as {actor}: expected {expected.value}, got "
                f"{actual.value if actual else 'UNCLASSIFIED'} — {observation.describe()}"
            )
            continue
        if entry.check is not None and actual is Outcome.ALLOWED:
            try:
                result = entry.check(observation.value, world, actor)
                if inspect.isawaitable(result):
                    await result
            except AssertionError as error:
                problems.append(f"{entry.label} as {actor}: check failed: {error} — vars {variables}")
    return problems


__all__ = [
    "ACTORS",
    "WORLD_OBJECTS",
    "MatrixEntry",
    "ModelAccessGrant",
    "Observation",
    "Outcome",
    "World",
    "build_world",
    "classify",
    "expect",
    "load_entries",
    "run_entry",
    "schema_fields",
    "world_object",
]
