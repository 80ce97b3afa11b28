"""The compiled subscription-event path gives exactly graphql-core's results."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncGenerator
from typing import Annotated, Any

import pytest
import strawberry

from gql_server.subscription_executor import SubscriptionEventExecutor

pytestmark = pytest.mark.asyncio


@strawberry.enum
class Mood(enum.Enum):
    CALM = "CALM"
    LOUD = "LOUD"


@strawberry.type
class Nested:
    value: int


@strawberry.type
class Tick:
    id: uuid.UUID
    seq: int
    text: str
    note: str | None
    mood: Mood
    ratio: float

    @strawberry.field
    def shout(self) -> str:
        return self.text.upper()


@strawberry.type
class Blob:
    seq: int
    nested: Nested
    items: list[int]


@strawberry.type
class Broken:
    seq: int  # the events below put None here: graphql-core's error path


Event = Annotated[Tick | Blob | Broken, strawberry.union("Event")]

EVENTS: list[Any] = [
    Tick(id=uuid.UUID(int=1), seq=1, text="hello", note=None, mood=Mood.CALM, ratio=0.5),
    Tick(id=uuid.UUID(int=2), seq=2, text="world", note="n", mood=Mood.LOUD, ratio=1.0),
    Blob(seq=3, nested=Nested(value=7), items=[1, 2]),
    Broken(seq=None),  # type: ignore[arg-type]
]


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def events(self, count: int = 4) -> AsyncGenerator[Event, None]:
        for event in EVENTS[:count]:
            yield event


def _schema(executor: type | None) -> strawberry.Schema:
    return strawberry.Schema(query=Query, subscription=Subscription, execution_context_class=executor)


async def _run(schema: strawberry.Schema, query: str, variables: dict[str, Any] | None = None) -> list[Any]:
    results = []
    async for result in await schema.subscribe(query, variable_values=variables):
        results.append(
            {
                "data": result.data,
                "errors": [(error.message, error.path) for error in result.errors or []],
            }
        )
    return results


QUERIES = [
    # Plain leaves with __typename, aliases and an inline fragment per type.
    """subscription { events { __typename ... on Tick { id seq t: text note mood ratio } ...on Blob { seq } } }""",
    # Named fragments, @skip/@include driven by variables, a field twice under one alias.
    """subscription($skip: Boolean!, $with: Boolean!) { e: events(count: 2) {
        ...TickFields ... on Tick { seq @skip(if: $skip) text @include(if: $with) seq } } }
       fragment TickFields on Tick { mood kind: __typename }""",
    # A field with a resolver (Tick), nested objects and lists (Blob), a null in a non-null
    # field (Broken): all through graphql-core.
    """subscription { events { ... on Tick { seq shout } ... on Blob { seq nested { value } items }
        ... on Broken { seq } } }""",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_compiled_events_equal_graphql_core(query: str) -> None:
    variables = {"skip": True, "with": True} if "$skip" in query else None
    expected = await _run(_schema(None), query, variables)
    assert await _run(_schema(SubscriptionEventExecutor), query, variables) == expected
    if variables:
        other = {"skip": False, "with": False}
        assert await _run(_schema(SubscriptionEventExecutor), query, other) == await _run(
            _schema(None), query, other
        )


async def test_leaf_only_events_take_the_compiled_path_and_others_do_not() -> None:
    schema = _schema(SubscriptionEventExecutor)
    before = SubscriptionEventExecutor.fast_events
    results = await _run(schema, QUERIES[0])
    # Two Ticks, one Blob (only `seq` selected on it: compiled), one Broken (no fields
    # selected: compiled as {__typename}).
    assert SubscriptionEventExecutor.fast_events - before == 4
    assert results[0]["data"] == {
        "events": {
            "__typename": "Tick",
            "id": str(uuid.UUID(int=1)),
            "seq": 1,
            "t": "hello",
            "note": None,
            "mood": "CALM",
            "ratio": 0.5,
        }
    }
    before = SubscriptionEventExecutor.fast_events
    results = await _run(schema, QUERIES[2])
    assert SubscriptionEventExecutor.fast_events - before == 0
    assert results[3]["errors"] and results[3]["data"] is None


async def test_the_product_schema_compiles_token_events() -> None:
    """messageStream's TOKEN selection used by the app and the benchmark is leaf-only."""
    from gql_server.chat.types import TokenEvent
    from gql_server.schema import build_schema

    schema = build_schema()
    executor_class = schema.execution_context_class
    assert executor_class is SubscriptionEventExecutor
    document = """subscription($id: UUID!) { messageStream(messageId: $id) {
        __typename ... on TokenEvent { seq delta } ... on MessageEvent { messageId } } }"""
    from graphql import parse

    executor = SubscriptionEventExecutor.build(
        schema._schema,
        parse(document),
        raw_variable_values={"id": str(uuid.uuid4())},
    )
    assert isinstance(executor, SubscriptionEventExecutor)
    event = TokenEvent(message_id=uuid.UUID(int=5), seq=9, delta="Hi")
    result = executor.build_per_event_executor(event).execute_operation(False)
    assert result.errors is None
    assert result.data == {
        "messageStream": {
            "__typename": "TokenEvent",
            "seq": 9,
            "delta": "Hi",
            "messageId": str(uuid.UUID(int=5)),
        }
    }
    assert executor._event_plans[TokenEvent] is not None
