"""The MCP server at /mcp, driven by the official `mcp` SDK's client over streamable HTTP
against a real server: list the tools, `search` and `ask` on a granted model, the same
refusal for an ungranted and an unknown model, and a revoked or missing token refused."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from gql_server.db.models import RagModel, Role
from tests.conftest import RunningServer
from tests.factories import client_for, create_model, create_user, grant_model
from tests.graphql_client import GraphQLClient
from tests.test_openai_api import AURORA, CREATE_TOKEN, REVOKE, ingest

pytestmark = pytest.mark.asyncio(loop_scope="session")


@asynccontextmanager
async def mcp_client(server: RunningServer, token: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(server.base_url + "/mcp", http_client=http)) as client:
            yield client


def payload(result: Any) -> Any:
    assert not result.is_error, result
    if result.structured_content is not None:
        content = result.structured_content
        return content.get("result", content) if isinstance(content, dict) else content
    return json.loads(result.content[0].text)


def error_text(result: Any) -> str:
    assert result.is_error, result
    return " ".join(getattr(part, "text", "") for part in result.content)


async def test_tools_search_and_ask_on_a_granted_model_refused_on_others(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model: RagModel = await create_model(server.state.sessionmaker)
    foreign = await create_model(server.state.sessionmaker)
    await ingest(superadmin, model.id, "aurora.txt", AURORA)
    await ingest(superadmin, foreign.id, "aurora.txt", AURORA)
    user = await create_user(server.state.sessionmaker)
    await grant_model(server.state.sessionmaker, model, user=user)
    session_client = client_for(server.client, server.state.tokens, user)
    created = (await session_client.execute(CREATE_TOKEN, {"scopes": ["CHAT"]}))["createAccessToken"]
    token = created["secret"]

    async with mcp_client(server, token) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"list_models", "search", "ask"} <= names, names
        models = payload(await client.call_tool("list_models", {}))
        assert [item["id"] for item in models] == [str(model.id)]

        passages = payload(
            await client.call_tool("search", {"model": str(model.id), "query": "magnetic poles", "k": 3})
        )
        assert passages and "magnetic poles" in passages[0]["text"]
        assert passages[0]["document_title"] and passages[0]["url"].startswith(
            server.base_url + "/files/documents/"
        )

        answer = payload(
            await client.call_tool(
                "ask", {"model": str(model.id), "question": "Where are auroras best seen?"}
            )
        )
        assert "magnetic poles" in answer["answer"]
        cited = {int(number) for number in re.findall(r"\[(\d+)\]", answer["answer"])}
        assert cited and cited <= {source["number"] for source in answer["sources"]}
        assert answer["citations"] and set(answer["citations"]) == cited

        refusals = []
        for other in (str(foreign.id), str(uuid.uuid4())):
            for tool, arguments in (
                ("search", {"query": "aurora"}),
                ("ask", {"question": "Where are auroras seen?"}),
            ):
                text = error_text(await client.call_tool(tool, {"model": other, **arguments}))
                refusals.append(text.replace(other, "<model>"))
        assert len(set(refusals[0::2])) == 1 and len(set(refusals[1::2])) == 1, refusals
        assert "does not exist or you may not use it" in refusals[0]

    admin = client_for(
        server.client, server.state.tokens, await create_user(server.state.sessionmaker, role=Role.ADMIN)
    )
    admin_only = (await admin.execute(CREATE_TOKEN, {"scopes": ["ADMIN"]}))["createAccessToken"]["secret"]
    with pytest.raises(Exception) as forbidden:
        async with mcp_client(server, admin_only) as client:
            await client.list_tools()
    assert "CHAT scope" in repr(forbidden.value), repr(forbidden.value)

    revoked = await session_client.execute(REVOKE, {"id": created["token"]["id"]})
    assert revoked["revokeAccessToken"]["__typename"] == "AccessToken"
    for bad, reason in (
        (token, "revoked"),
        (None, "Authorization: Bearer"),
        ("ragql_pat_short", "malformed"),
    ):
        # The SDK raises the server's refusal (HTTP 401 with a JSON-RPC error) with its message.
        with pytest.raises(Exception) as refused:
            async with mcp_client(server, bad) as client:
                await client.list_tools()
        assert reason in repr(refused.value), repr(refused.value)
