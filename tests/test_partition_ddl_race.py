"""Creating models concurrently, while the sweeper detaches deleted models' chunk partitions.

The INSERT INTO models trigger ATTACHes a partition (SHARE UPDATE EXCLUSIVE on the parent,
then SHARE ROW EXCLUSIVE on models for the foreign key): two concurrent creations deadlocked
on each other ("deadlock detected", 4-7 of 8 failed before the fix), and DETACH ... CONCURRENTLY
joins such cycles. createModel takes the parent's lock first and retries a deadlock victim;
the sweeper retries on its next pass.
"""

from __future__ import annotations

import asyncio

import pytest

from gql_server.storage.chunk_partitions import drop_orphan_chunk_partitions
from tests.conftest import RunningServer
from tests.factories import create_model
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio(loop_scope="session")

CREATE = "mutation($name: String!) { createModel(input: {name: $name, provider: EXTRACTIVE}) { __typename } }"
DELETE = "mutation($id: UUID!) { deleteModel(id: $id) { __typename } }"


async def test_create_model_survives_concurrent_partition_detaches(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    failures: list[object] = []
    for round_number in range(4):
        doomed = [await create_model(server.state.sessionmaker) for _ in range(6)]
        for model in doomed:
            assert (await superadmin.execute(DELETE, {"id": str(model.id)}))["deleteModel"][
                "__typename"
            ] == "ModelDeleted"

        async def create(index: int, round_number: int = round_number) -> None:
            body = await superadmin.raw(CREATE, {"name": f"race {round_number}-{index}"})
            if body.get("errors") or body["data"]["createModel"]["__typename"] != "Model":
                failures.append(body)

        await asyncio.gather(
            drop_orphan_chunk_partitions(server.state.engine),
            *(create(index) for index in range(8)),
        )
    assert failures == []
