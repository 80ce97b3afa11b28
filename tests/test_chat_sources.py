"""Answers over real ingested documents: sources, [n] markers, and who may retrieve what."""

from __future__ import annotations

import uuid

import httpx
import pytest

from gql_server.db.models import ProviderKind
from tests.chat_support import chat_world, send_ok, start_session, stored_message, stream_all
from tests.conftest import RunningServer
from tests.document_helpers import upload_document, wait_for_final
from tests.factories import create_model
from tests.fake_llm_servers import DEFAULT_MODEL_NAME, FakeBehaviour, FakeOpenAIServer
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

AURORA = (
    b"The aurora borealis is caused by charged solar particles striking the upper atmosphere. "
    b"Auroras are best seen near the magnetic poles during long winter nights.\n"
)
PENGUINS = b"Emperor penguins breed during the Antarctic winter and huddle together for warmth.\n"
SECRET_NOTES = b"The zebra project codename is Bluefin and its budget is forty thousand.\n"

ATTACH = """
mutation Attach($sessionId: UUID!, $file: Upload!) {
  attachFile(sessionId: $sessionId, file: $file) {
    __typename ... on DocumentUploaded { document { id } } ... on Error { message }
  }
}
"""


async def ingest(admin: GraphQLClient, model_id: object, filename: str, content: bytes) -> str:
    document_id = await upload_document(admin, str(model_id), filename, content)
    document = await wait_for_final(admin, document_id)
    assert document["status"] == "READY", document
    return document_id


async def attach(client: GraphQLClient, session_id: str, filename: str, content: bytes) -> str:
    body = await client.upload(ATTACH, {"sessionId": session_id}, "file", filename, content)
    result = body["data"]["attachFile"]
    assert result["__typename"] == "DocumentUploaded", body
    return str(result["document"]["id"])


async def test_sources_and_citation_markers_agree(server: RunningServer, superadmin: GraphQLClient) -> None:
    fake = FakeOpenAIServer(
        FakeBehaviour(tokens=["Charged solar particles", " cause it [1]", ", not penguins [7]", "."])
    )
    async with fake.serve():
        world = await chat_world(
            server,
            provider=ProviderKind.OPENAI_COMPATIBLE,
            base_url=fake.base_url,
            llm_model_name=DEFAULT_MODEL_NAME,
        )
        document_id = await ingest(superadmin, world.model.id, "aurora.txt", AURORA)
        session_id = await start_session(world.client, world.model.id)
        message_id = await send_ok(world.client, session_id, "What causes the aurora borealis?")
        events = await stream_all(world.client, message_id)
        prompt = str(fake.chat_requests()[-1].body)
    sources = events[0]["sources"]
    assert [source["number"] for source in sources] == [1]
    assert sources[0]["documentId"] == document_id and "aurora" in sources[0]["snippet"].lower()
    # A signed link a browser can open as it is, for this user only.
    url = sources[0]["url"]
    assert url.startswith(f"/files/documents/{document_id}?token=")
    async with httpx.AsyncClient(base_url=server.base_url) as browser:
        opened = await browser.get(url.split("#")[0])
        assert opened.status_code == 200 and b"aurora" in opened.content.lower()
        tampered = await browser.get(url.split("#")[0].replace(str(document_id), str(uuid.uuid4())))
        assert tampered.status_code == 401  # the signature is for one document only
    assert "[1] aurora" in prompt.lower() or "[1]" in prompt
    done = events[-1]
    assert done["text"] == "Charged solar particles cause it [1], not penguins."
    assert done["citations"] == [1]
    stored = await stored_message(world.client, message_id)
    assert stored["content"] == done["text"] and stored["citations"] == [1]
    assert stored["sources"][0]["cited"] is True


async def test_extractive_answers_cite_stored_sources(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    world = await chat_world(server)
    await ingest(superadmin, world.model.id, "aurora.txt", AURORA)
    session_id = await start_session(world.client, world.model.id)
    events = await stream_all(
        world.client, await send_ok(world.client, session_id, "Where are auroras best seen?")
    )
    numbers = {source["number"] for source in events[0]["sources"]}
    done = events[-1]
    assert done["__typename"] == "DoneEvent" and done["status"] == "COMPLETE"
    assert "magnetic poles" in done["text"]
    assert done["citations"] and set(done["citations"]) <= numbers


async def test_no_passages_from_other_models_or_other_sessions(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    owner = await chat_world(server)
    other_model = await create_model(server.state.sessionmaker)
    await ingest(superadmin, owner.model.id, "aurora.txt", AURORA)
    await ingest(superadmin, other_model.id, "penguins.txt", PENGUINS)
    session_id = await start_session(owner.client, owner.model.id)
    # Another model's document never shows up, even for a question that matches it.
    events = await stream_all(
        owner.client, await send_ok(owner.client, session_id, "How do emperor penguins breed?")
    )
    assert all("penguin" not in source["snippet"].lower() for source in events[0]["sources"])

    # An attachment serves its own session only.
    attachment = await attach(owner.client, session_id, "notes.txt", SECRET_NOTES)
    assert (await wait_for_final(owner.client, attachment))["status"] == "READY"
    question = "What is the zebra project codename?"
    events = await stream_all(owner.client, await send_ok(owner.client, session_id, question))
    assert any(source["documentId"] == attachment for source in events[0]["sources"])

    neighbour = await chat_world(server, model=owner.model)
    neighbour_session = await start_session(neighbour.client, owner.model.id)
    events = await stream_all(neighbour.client, await send_ok(neighbour.client, neighbour_session, question))
    assert all(source["documentId"] != attachment for source in events[0]["sources"])
    assert "Bluefin" not in events[-1]["text"]

    newer_session = await start_session(owner.client, owner.model.id)
    events = await stream_all(owner.client, await send_ok(owner.client, newer_session, question))
    assert all(source["documentId"] != attachment for source in events[0]["sources"])


async def test_model_without_documents_answers_sensibly(server: RunningServer) -> None:
    world = await chat_world(server)
    session_id = await start_session(world.client, world.model.id)
    events = await stream_all(world.client, await send_ok(world.client, session_id, "What is the warranty?"))
    assert events[0]["sources"] == []
    assert events[-1]["status"] == "COMPLETE"
    assert "couldn't find" in events[-1]["text"]
