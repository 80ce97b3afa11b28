"""The OpenAI-compatible API of a real `ragql serve` process (embedded PostgreSQL, in-process
broker), set up through GraphQL as a person would, then used with the official `openai` SDK:
models, a whole and a streamed completion with sources, and a revoked token refused."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.graphql_client import post_graphql_data
from tests.serve_process import ServeProcess

EMAIL = "root@example.com"
PASSWORD = "serve-openai-password-1"
AURORA = (
    b"The aurora borealis is caused by charged solar particles striking the upper atmosphere. "
    b"Auroras are best seen near the magnetic poles during long winter nights.\n"
)


def _upload(base_url: str, token: str, model_id: str) -> str:
    operations = {
        "query": "mutation($m: UUID!, $f: Upload!) { uploadDocument(modelId: $m, file: $f) { __typename "
        "... on DocumentUploaded { document { id } } } }",
        "variables": {"m": model_id, "f": None},
    }
    response = httpx.post(
        base_url + "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.f"]})},
        files={"0": ("aurora.txt", AURORA, "text/plain")},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    result = response.json()["data"]["uploadDocument"]
    assert result["__typename"] == "DocumentUploaded", result
    return str(result["document"]["id"])


def test_the_openai_sdk_against_ragql_serve() -> None:
    root = Path(tempfile.mkdtemp(prefix="ragql-serve-openai-"))
    serve = ServeProcess(root / "data", env={"SUPERADMIN_EMAIL": EMAIL, "SUPERADMIN_PASSWORD": PASSWORD})
    try:
        base = serve.start().base_url
        session = post_graphql_data(
            base,
            "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { ... on AuthPayload { accessToken } } }",
            {"e": EMAIL, "p": PASSWORD},
        )["logIn"]["accessToken"]
        model_id = post_graphql_data(
            base,
            'mutation { createModel(input: {name: "Aurora notes"}) { ... on Model { id } } }',
            token=session,
        )["createModel"]["id"]
        document_id = _upload(base, session, model_id)
        deadline = time.monotonic() + 180
        while (
            status := post_graphql_data(
                base, "query($id: UUID!) { document(id: $id) { status } }", {"id": document_id}, session
            )["document"]["status"]
        ) not in ("READY", "FAILED"):
            assert time.monotonic() < deadline, status
            time.sleep(0.3)
        assert status == "READY"
        created = post_graphql_data(
            base,
            'mutation { createAccessToken(name: "sdk", scopes: [CHAT]) { ... on AccessTokenCreated { secret token { id } } } }',
            token=session,
        )["createAccessToken"]

        client = openai.OpenAI(base_url=base + "/v1", api_key=created["secret"], max_retries=0)
        assert [model.id for model in client.models.list().data] == [model_id]
        question = [{"role": "user", "content": "Where are auroras best seen?"}]
        whole = client.chat.completions.create(model=model_id, messages=question)  # type: ignore[arg-type]
        text = whole.choices[0].message.content or ""
        numbers = {source["number"] for source in (whole.model_extra or {})["ragql_sources"]}
        cited = {int(number) for number in re.findall(r"\[(\d+)\]", text)}
        assert "magnetic poles" in text and cited and cited <= numbers
        streamed = client.chat.completions.create(model=model_id, messages=question, stream=True)  # type: ignore[arg-type]
        chunks = list(streamed)
        assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == text
        assert chunks[-1].choices[0].finish_reason == "stop"

        post_graphql_data(
            base,
            "mutation($id: UUID!) { revokeAccessToken(id: $id) { __typename } }",
            {"id": created["token"]["id"]},
            session,
        )
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    finally:
        serve.stop()
        shutil.rmtree(root, ignore_errors=True)
