"""ragql's OpenAI-compatible provider against a real llama.cpp server (llama-cpp-python).

    python bench/llama_cpp_check.py --llama-python /path/to/venv/bin/python [--keep]

The llama.cpp Python server is not a project dependency: it compiles llama.cpp from source
(no wheel on PyPI for this machine; ~10 min on two cores), so it lives in a venv of its own:

    python3 -m venv .llama-venv && .llama-venv/bin/pip install "llama-cpp-python[server]" gguf numpy

The check writes a tiny random-weight GGUF model (bench/tiny_gguf.py: no registry ships
weights), starts `python -m llama_cpp.server` on it, starts `ragql serve`, creates an
OPENAI_COMPATIBLE model pointing at the server (max 12 output tokens), uploads a short
document and asks a question. It checks what the issue asks of LLM answers:

- the connection test passes against the real server;
- the reply stops at the token limit, llama.cpp says `finish_reason: "length"`, and the stored
  message is COMPLETE with `truncated: true`;
- the token usage is stored as the server reported it (completion tokens = the limit), or as
  unknown (null, never zeros) when it reported none — llama-cpp-python 0.3.36 sends no usage
  in streamed replies, whatever `stream_options` says;
- the model writes no `[n]` markers, so every source is `cited: false` — and the sources the
  answer was given are still listed on the message.

Prints each check; the last line is one JSON object; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from answer_bench import EMAIL, PASSWORD, Api

DOCUMENT = """# Harbour maintenance handbook

The harbour crane CR-7 is inspected every 90 days by the port engineering team.
Inspection records are kept for seven years in the maintenance archive.
The tide gauge at pier 4 reports water levels every ten minutes to the control room.
Diesel for the tug boats is stored in tank T-12, which holds 40,000 litres.
"""

MAX_TOKENS = 12


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s")


async def _check(api: Api, llama_base: str, work: Path) -> dict[str, Any]:
    await api.log_in()
    created = await api.call(
        """mutation($url: String!, $tokens: Int!) { createModel(input: {name: "llama.cpp check",
        provider: OPENAI_COMPATIBLE, llmModelName: "tiny", baseUrl: $url, temperature: 0,
        maxOutputTokens: $tokens, contextWindowTokens: 16000, topK: 3}) {
        __typename ... on Model { id } ... on Error { message } } }""",
        url=llama_base,
        tokens=MAX_TOKENS,
    )
    model = created["createModel"]
    assert model["__typename"] == "Model", model
    model_id = model["id"]
    connection = (
        await api.call(
            "mutation($m: UUID!) { testModelConnection(modelId: $m) { __typename "
            "... on ModelConnectionResult { ok message } } }",
            m=model_id,
        )
    )["testModelConnection"]
    path = work / "harbour-handbook.md"
    path.write_text(DOCUMENT)
    document_id = await api.upload(model_id, path)
    while True:
        document = (
            await api.call("query($id: UUID!) { document(id: $id) { status error } }", id=document_id)
        )["document"]
        if document["status"] in ("READY", "FAILED"):
            break
        await asyncio.sleep(0.2)
    assert document["status"] == "READY", document
    session = (
        await api.call(
            'mutation($m: UUID!) { startChatSession(modelId: $m, title: "llama.cpp") '
            "{ __typename ... on ChatSession { id } } }",
            m=model_id,
        )
    )["startChatSession"]
    sent = (
        await api.call(
            """mutation($s: UUID!, $c: String!) { sendMessage(sessionId: $s, content: $c) {
            __typename ... on MessageSent { assistantMessage { id } } ... on Error { message } } }""",
            s=session["id"],
            c="How often is the harbour crane CR-7 inspected?",
        )
    )["sendMessage"]
    assert sent["__typename"] == "MessageSent", sent
    started = time.monotonic()
    while True:
        message = (
            await api.call(
                """query($id: UUID!) { chatMessage(id: $id) { __typename ... on ChatMessage {
                status content error truncated tokenUsage { promptTokens completionTokens }
                sources { number cited documentId pageStart } } } }""",
                id=sent["assistantMessage"]["id"],
            )
        )["chatMessage"]
        if message["status"] not in ("PENDING", "STREAMING"):
            break
        await asyncio.sleep(0.1)
    seconds = time.monotonic() - started
    usage = message["tokenUsage"] or {}
    sources = message["sources"]
    checks = {
        "connection_test_ok": bool(connection.get("ok")),
        "status_complete": message["status"] == "COMPLETE",
        "truncated_flag_set": message["truncated"] is True,
        # llama-cpp-python's server sends no usage in a streamed reply (it ignores
        # stream_options.include_usage; a non-streamed reply carries it): ragql then stores
        # the usage as unknown (null), never as zeros. A server that reports it must have
        # it stored as reported.
        "usage_as_reported_or_unknown": message["tokenUsage"] is None
        or (usage.get("completionTokens") == MAX_TOKENS and (usage.get("promptTokens") or 0) > 0),
        "sources_listed": len(sources) > 0 and all(s["documentId"] == document_id for s in sources),
        "no_source_cited_without_markers": all(not s["cited"] for s in sources),
    }
    for name, passed in checks.items():
        print(f"{'ok  ' if passed else 'FAIL'} {name}", file=sys.stderr)
    return {
        "checks": checks,
        "answer": message["content"],
        "error": message["error"],
        "usage": message["tokenUsage"],
        "sources": len(sources),
        "answer_seconds": round(seconds, 2),
        "connection_message": connection.get("message"),
    }


async def _check_over_http(base_url: str, llama_base: str, work: Path) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=120) as http:
        return await _check(Api(http, base_url), llama_base, work)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.serve_process import ServeProcess

    work = Path(tempfile.mkdtemp(prefix="ragql-llama-check-"))
    model_path = work / "tiny.gguf"
    words = work / "words.txt"
    words.write_text(DOCUMENT * 3)
    subprocess.run(
        [
            args.llama_python,
            str(Path(__file__).with_name("tiny_gguf.py")),
            str(model_path),
            "--words",
            str(words),
        ],
        check=True,
    )
    port = _free_port()
    llama_log = (work / "llama-server.log").open("wb")
    llama = subprocess.Popen(
        [
            args.llama_python,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "16384",
            "--chat_format",
            "chatml",
            "--model_alias",
            "tiny",
        ],
        stdout=llama_log,
        stderr=subprocess.STDOUT,
    )
    serve = None
    try:
        _wait_http(f"http://127.0.0.1:{port}/v1/models", llama, 120)
        serve = ServeProcess(
            work / "data",
            env={
                "SUPERADMIN_EMAIL": EMAIL,
                "SUPERADMIN_PASSWORD": PASSWORD,
                "ALLOW_PRIVATE_PROVIDER_URLS": "true",
                "LOG_LEVEL": "WARNING",
            },
        ).start(timeout=300)
        result = asyncio.run(_check_over_http(serve.base_url, f"http://127.0.0.1:{port}/v1", work))
        version = subprocess.run(
            [args.llama_python, "-c", "import llama_cpp; print(llama_cpp.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        result["llama_cpp_python"] = version
        return result
    finally:
        if serve is not None:
            serve.stop()
        llama.terminate()
        llama.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llama-python", default=os.environ.get("LLAMA_PYTHON", ".llama-venv/bin/python"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, model)")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result))
    if not all(result["checks"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
