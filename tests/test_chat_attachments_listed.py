"""A chat lists the files attached to it (issue 16: the conversation shows which files are
attached), through one dataloader statement for a whole page of sessions."""

from __future__ import annotations

import asyncio

import pytest

from tests.chat_support import chat_world, start_session
from tests.conftest import RunningServer
from tests.document_helpers import wait_for_final
from tests.test_audit_names import counted_statements
from tests.test_chat_sources import attach

pytestmark = pytest.mark.asyncio

SESSIONS = """
query { chatSessions(first: 100) { items { id attachments { id filename status sessionId } } } }
"""
PLAIN = "query { chatSessions(first: 100) { items { id } } }"


async def test_sessions_list_their_attachments(server: RunningServer) -> None:
    world = await chat_world(server)
    with_files = await start_session(world.client, world.model.id, "With files")
    first = await attach(world.client, with_files, "notes.txt", b"The zebra project codename is Bluefin.\n")
    second = await attach(world.client, with_files, "parts.csv", b"part,price\nQX-1,0.40\n")
    others = [await start_session(world.client, world.model.id, f"Empty {index}") for index in range(4)]
    other_user = await chat_world(server, model=world.model)
    foreign = await start_session(other_user.client, world.model.id, "Someone else's")
    theirs = await attach(other_user.client, foreign, "theirs.txt", b"Not yours.\n")
    # Statements are counted on the whole engine: let the in-process ingestion of the three
    # files finish first, or its statements land in one count and not the other (CI saw 6 - 6).
    for client, document_id in ((world.client, first), (world.client, second), (other_user.client, theirs)):
        await wait_for_final(client, document_id)
    await asyncio.sleep(0.5)  # and the file clean-up that follows READY's commit

    with counted_statements(server) as plain:
        await world.client.execute(PLAIN)
    with counted_statements(server) as listed:
        items = (await world.client.execute(SESSIONS))["chatSessions"]["items"]
    by_id = {item["id"]: item["attachments"] for item in items}
    assert [(item["id"], item["filename"]) for item in by_id[with_files]] == [
        (first, "notes.txt"),
        (second, "parts.csv"),
    ]
    assert all(item["sessionId"] == with_files for item in by_id[with_files])
    assert all(by_id[session_id] == [] for session_id in others)
    assert foreign not in by_id
    # Five sessions, one more statement.
    assert len(listed) - len(plain) == 1, listed
