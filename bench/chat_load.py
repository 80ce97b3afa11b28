"""Chat streaming under load: N concurrent WebSocket clients against one `ragql serve` process.

    .venv/bin/python bench/chat_load.py [--clients 50,200,500] [--tokens 200] [--token-delay 0.05]
                                        [--ramp SECONDS] [--client-processes 2]
                                        [--api graphql,openai]

Two doors, one round each per N in the same run (`--api`, default both): `graphql` sends
sendMessage over a WebSocket and reads messageStream; `openai` POSTs a streaming
/v1/chat/completions (the OpenAI-compatible API, same access token) over HTTP and reads the
SSE chunks. The same answer pipeline serves both, so the difference is the door. For
`openai`, `send_message_ms` is the time to the response headers, which /v1 sends with the
first token (it waits for the first token or a failure, so a failure is an HTTP error).
Run it at N = 200 only on a machine nobody shares (not run at 200 here; N = 10 checked).

Two workloads:
  concurrent (the default): arrivals are spread over a ramp equal to one answer's duration
      (--tokens x --token-delay, 200 x 0.05 s = 10 s), so at steady state about N answers
      stream at once: "N concurrent chats". Arrivals are N / ramp per second.
  burst (`--ramp 2 --tokens 40`): all N messages within 2 s with 2-second answers — an
      arrival spike (25-250 arrivals/s); most streams are open at once only briefly.
Each round reports the arrivals per second and the largest number of streams actually
open at once (a stream is open from its sendMessage until its DONE/ERROR).

Set-up (all local, nothing downloaded): an embedded PostgreSQL in a temporary directory,
migrated; one OPENAI_COMPATIBLE model whose base URL is the fake OpenAI server from
tests/fake_llm_servers.py, run in ITS OWN PROCESS (`python -m tests.fake_llm_servers openai`,
streaming `--tokens` tokens every `--token-delay` seconds on a fixed schedule); N users
written straight to the database (at most one generation per user, so one user per
concurrent client), each granted the model and given one chat session; access tokens
minted with the server's secret. The model has no documents, so retrieval is one EXISTS
query: what is measured is the chat path.

Three kinds of process, none sharing a GIL with another: `ragql serve` (one process, its own
data dir and DATABASE_URL), the fake OpenAI server, and `--client-processes` client
processes (multiprocessing, spawn). The orchestrating process only sets up and collects.
Per round, the clients connect (graphql-transport-ws, in batches of 50, not timed), then
the round starts: client i of N sends `sendMessage` over its socket at start + i * ramp / N
(evenly spaced arrivals, N / ramp per second, interleaved across client processes),
subscribes to `messageStream` with the returned id and reads until DONE/ERROR.

Timing, on each side with time.perf_counter() (CLOCK_MONOTONIC on Linux); only differences
taken within one process are used:
    client TTFT   = client first TOKEN received − client mutation sent   (client process)
    fake LLM TTFT = fake first token sent        − fake request received (fake server process)
    server-added  = client TTFT − fake LLM TTFT
The server-added figure therefore still includes the loopback network, the client's own
scheduling delay (reported as client event-loop lag) and everything `ragql serve` does:
sendMessage, the task start, the DB reads before the provider call, the provider's HTTP
request, and relaying the first token. Errors are ERROR events, GraphQL errors, a wrong
answer text, or dropped sockets. Server RSS is sampled every 0.2 s (peak reported); CPU
seconds are reported for the server, the fake LLM and the client processes. The last line
printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psutil
import websockets

from gql_server.auth.passwords import hash_password
from gql_server.auth.tokens import AccessTokenCodec
from gql_server.db.embedded import EmbeddedPostgres
from gql_server.db.migrate import upgrade_to_head
from tests.fake_llm_servers import DEFAULT_MODEL_NAME

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRET = "chat-load-bench-secret-key-0123456789-abcdefghijklmnop"
SEND = (
    "mutation($s: UUID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { __typename "
    "... on MessageSent { messageId } ... on Error { message } } }"
)
STREAM = (
    "subscription($m: UUID!) { messageStream(messageId: $m, coalesceTokens: true) { __typename "
    "... on TokenEvent { seq delta } ... on DoneEvent { seq status } ... on ErrorEvent { seq message } } }"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return round(ordered[index], 2)


async def prepare_database(
    url: str, users: int, fake_base_url: str
) -> tuple[list[tuple[uuid.UUID, uuid.UUID]], uuid.UUID]:
    """Users, one model, grants and one chat session per user; returns the (user id, session
    id) pairs and the model's id."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from gql_server.db.models import ChatSession, ModelAccessGrant, ProviderKind, RagModel, User

    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    password_hash = hash_password("bench-password-1")
    pairs: list[tuple[uuid.UUID, uuid.UUID]] = []
    from sqlalchemy.ext.asyncio import async_sessionmaker

    async with async_sessionmaker(engine).begin() as session:
        model = RagModel(
            id=uuid.uuid4(),
            name="bench-model",
            provider=ProviderKind.OPENAI_COMPATIBLE,
            base_url=fake_base_url,
            llm_model_name=DEFAULT_MODEL_NAME,
            max_output_tokens=256,
        )
        session.add(model)
        await session.flush()
        model_id = model.id
        for index in range(users):
            user = User(id=uuid.uuid4(), email=f"bench-{index}@example.com", password_hash=password_hash)
            session.add(user)
            await session.flush()
            session.add(ModelAccessGrant(model_id=model.id, user_id=user.id))
            chat = ChatSession(id=uuid.uuid4(), user_id=user.id, model_id=model.id, title="bench")
            session.add(chat)
            pairs.append((user.id, chat.id))
    await engine.dispose()
    return pairs, model_id


class Client:
    def __init__(self, index: int, token: str, session_id: str) -> None:
        self.index = index
        self.token = token
        self.session_id = session_id
        self.socket: Any = None
        self.marker = ""
        self.sent_at = 0.0
        self.reply_at: float | None = None
        self.first_token_at: float | None = None
        self.ended_at: float | None = None
        self.events = 0
        self.text: list[str] = []
        self.error: str | None = None

    async def connect(self, ws_url: str) -> None:
        self.socket = await websockets.connect(
            ws_url, subprotocols=["graphql-transport-ws"], max_size=2**24, open_timeout=60, ping_interval=None
        )
        await self.socket.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.token}"}})
        )
        while True:
            message = json.loads(await self.socket.recv())
            if message["type"] == "connection_ack":
                return
            if message["type"] == "ping":
                await self.socket.send(json.dumps({"type": "pong"}))

    async def _next(self, operation: str, timeout: float) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.socket.recv(), timeout))
            if message["type"] == "ping":
                await self.socket.send(json.dumps({"type": "pong"}))
                continue
            if message.get("id") == operation:
                return message

    async def run(self, round_name: str, send_at: float, expected_text: str, timeout: float) -> None:
        try:
            await self._run(round_name, send_at, expected_text, timeout)
        finally:
            self.ended_at = time.perf_counter()

    async def _run(self, round_name: str, send_at: float, expected_text: str, timeout: float) -> None:
        await asyncio.sleep(max(0.0, send_at - time.perf_counter()))
        self.marker = f"bench question {round_name}-{self.index} {uuid.uuid4().hex[:8]}"
        try:
            self.sent_at = time.perf_counter()
            await self.socket.send(
                json.dumps(
                    {
                        "id": "send",
                        "type": "subscribe",
                        "payload": {"query": SEND, "variables": {"s": self.session_id, "c": self.marker}},
                    }
                )
            )
            reply = await self._next("send", timeout)
            self.reply_at = time.perf_counter()
            if reply["type"] != "next" or reply["payload"].get("errors"):
                self.error = f"sendMessage: {reply}"
                return
            result = reply["payload"]["data"]["sendMessage"]
            if result["__typename"] != "MessageSent":
                self.error = f"sendMessage: {result}"
                return
            await self._next("send", timeout)  # complete
            await self.socket.send(
                json.dumps(
                    {
                        "id": "stream",
                        "type": "subscribe",
                        "payload": {"query": STREAM, "variables": {"m": result["messageId"]}},
                    }
                )
            )
            while True:
                message = await self._next("stream", timeout)
                if message["type"] == "complete":
                    self.error = "stream completed without DONE"
                    return
                if message["type"] != "next" or message["payload"].get("errors"):
                    self.error = f"stream error: {message}"
                    return
                event = message["payload"]["data"]["messageStream"]
                kind = event["__typename"]
                if kind == "TokenEvent":
                    if self.first_token_at is None:
                        self.first_token_at = time.perf_counter()
                    self.events += 1
                    self.text.append(event["delta"])
                elif kind == "DoneEvent":
                    await self._next("stream", timeout)  # complete
                    # A TOKEN event may carry several coalesced tokens: compare the text.
                    if "".join(self.text) != expected_text:
                        self.error = f"answer text differs ({len(''.join(self.text))} characters)"
                    return
                elif kind == "ErrorEvent":
                    self.error = f"ERROR event: {event['message']}"
                    return
        except Exception as failure:
            self.error = f"{type(failure).__name__}: {failure}"


class OpenAIClient(Client):
    """The same question through POST /v1/chat/completions with stream: true (SSE)."""

    http: httpx.AsyncClient | None = None  # one per client process, set by the process

    def __init__(self, index: int, token: str, session_id: str, base_url: str, model: str) -> None:
        super().__init__(index, token, session_id)
        self.base_url = base_url
        self.model = model

    async def connect(self, ws_url: str) -> None:
        self.socket = True  # no connection to set up: one HTTP request per answer

    async def _run(self, round_name: str, send_at: float, expected_text: str, timeout: float) -> None:
        await asyncio.sleep(max(0.0, send_at - time.perf_counter()))
        self.marker = f"bench question {round_name}-{self.index} {uuid.uuid4().hex[:8]}"
        assert OpenAIClient.http is not None
        body = {
            "model": self.model,
            "stream": True,
            "messages": [{"role": "user", "content": self.marker}],
        }
        try:
            self.sent_at = time.perf_counter()
            async with OpenAIClient.http.stream(
                "POST",
                self.base_url + "/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=timeout,
            ) as response:
                self.reply_at = time.perf_counter()
                if response.status_code != 200:
                    self.error = f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"
                    return
                finished = False
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    data = line[6:]
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        self.error = f"stream error: {chunk['error'].get('message')}"
                        return
                    for choice in chunk.get("choices") or ():
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            if self.first_token_at is None:
                                self.first_token_at = time.perf_counter()
                            self.events += 1
                            self.text.append(content)
                        if choice.get("finish_reason"):
                            finished = True
                if not finished:
                    self.error = "stream ended without finish_reason"
                elif "".join(self.text) != expected_text:
                    self.error = f"answer text differs ({len(''.join(self.text))} characters)"
        except Exception as failure:
            self.error = f"{type(failure).__name__}: {failure}"


async def _loop_lag(stop: asyncio.Event, lags: list[float]) -> None:
    """How late this client process's event loop wakes up (harness starvation, ms)."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.05)
        lags.append((time.perf_counter() - before - 0.05) * 1000)


async def _client_process_async(job: dict[str, Any], control: Any, results: Any) -> None:
    clients: list[Client]
    if job["api"] == "openai":
        OpenAIClient.http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None)
        )
        clients = [
            OpenAIClient(index, token, session_id, job["base_url"], job["model"])
            for index, token, session_id in job["clients"]
        ]
    else:
        clients = [Client(index, token, session_id) for index, token, session_id in job["clients"]]
    connect_errors = 0
    for start in range(0, len(clients), 50):
        outcomes = await asyncio.gather(
            *(client.connect(job["ws_url"]) for client in clients[start : start + 50]), return_exceptions=True
        )
        for client, outcome in zip(clients[start : start + 50], outcomes, strict=True):
            if isinstance(outcome, Exception):
                connect_errors += 1
                client.socket = None
    results.put(("ready", job["worker"]))
    # The orchestrator answers with the ramp's start as a perf_counter() offset from now.
    start_in = await asyncio.to_thread(control.get)
    start = time.perf_counter() + start_in
    stop, lags = asyncio.Event(), []
    lag_task = asyncio.create_task(_loop_lag(stop, lags))
    cpu_before = psutil.Process().cpu_times()
    await asyncio.gather(
        *(
            client.run(job["round"], start + offset, job["expected_text"], job["timeout"])
            for client, offset in zip(clients, job["offsets"], strict=True)
            if client.socket is not None
        )
    )
    cpu_after = psutil.Process().cpu_times()
    stop.set()
    await lag_task
    for client in clients:
        if client.socket is not None and not isinstance(client, OpenAIClient):
            with contextlib.suppress(Exception):
                await client.socket.close()
    if OpenAIClient.http is not None:
        await OpenAIClient.http.aclose()
    results.put(
        (
            "done",
            {
                "worker": job["worker"],
                "connect_errors": connect_errors,
                "cpu_seconds": (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system),
                "loop_lag_ms": lags,
                "clients": [
                    {
                        "marker": client.marker,
                        "sent_at": client.sent_at,
                        "reply_at": client.reply_at,
                        "first_token_at": client.first_token_at,
                        # Relative to the round's start in this process: comparable across processes.
                        "open_from": client.sent_at - start if client.sent_at else None,
                        "open_until": client.ended_at - start if client.ended_at else None,
                        "events": client.events,
                        "error": client.error if client.socket is not None else "connect failed",
                    }
                    for client in clients
                ],
            },
        )
    )


def client_process(job: dict[str, Any], control: Any, results: Any) -> None:
    asyncio.run(_client_process_async(job, control, results))


async def sample_rss(pid: int, stop: asyncio.Event, peak: list[int]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        await asyncio.sleep(0.2)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def run_round(
    n: int,
    pairs: list[tuple[uuid.UUID, uuid.UUID]],
    codec: AccessTokenCodec,
    ws_url: str,
    fake_root_url: str,
    fake_pid: int,
    args: argparse.Namespace,
    server_pid: int,
    api: str = "graphql",
    model_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    workers = max(1, min(args.client_processes, n))
    expected_text = "".join(f"tok{i} " for i in range(args.tokens))
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    controls = [context.Queue() for _ in range(workers)]
    processes = []
    for worker in range(workers):
        indexes = list(range(worker, n, workers))
        job = {
            "worker": worker,
            "round": f"n{n}-{api}",
            "api": api,
            "base_url": ws_url.replace("ws://", "http://").removesuffix("/graphql"),
            "model": str(model_id),
            "ws_url": ws_url,
            "expected_text": expected_text,
            "timeout": args.timeout,
            "clients": [
                (index, codec.issue(pairs[index][0], 0).token, str(pairs[index][1])) for index in indexes
            ],
            # Evenly spaced arrivals over the ramp, interleaved across the client processes.
            "offsets": [index * args.ramp / n for index in indexes],
        }
        process = context.Process(target=client_process, args=(job, controls[worker], results), daemon=True)
        process.start()
        processes.append(process)
    for _ in range(workers):
        kind, _worker = await asyncio.to_thread(results.get, True, 600)
        assert kind == "ready"
    baseline_rss = psutil.Process(server_pid).memory_info().rss
    stop, peak = asyncio.Event(), [baseline_rss]
    sampler = asyncio.create_task(sample_rss(server_pid, stop, peak))
    server_process, fake_process = psutil.Process(server_pid), psutil.Process(fake_pid)
    server_cpu_before, fake_cpu_before = _cpu(server_process), _cpu(fake_process)
    psutil.cpu_percent()
    started = time.perf_counter()
    for control in controls:
        control.put(0.3)
    reports = []
    for _ in range(workers):
        kind, report = await asyncio.to_thread(results.get, True, args.timeout * 3 + args.ramp + 60)
        assert kind == "done"
        reports.append(report)
    wall = time.perf_counter() - started
    server_cpu = _cpu(server_process) - server_cpu_before
    fake_cpu = _cpu(fake_process) - fake_cpu_before
    machine_cpu_percent = psutil.cpu_percent()
    stop.set()
    await sampler
    for process in processes:
        await asyncio.to_thread(process.join, 30)
    async with httpx.AsyncClient() as http:
        recorded = (await http.get(f"{fake_root_url}/_recorded", timeout=60)).json()
    by_marker = {row["content"]: row for row in recorded}
    client_ttft: list[float] = []
    llm_ttft: list[float] = []
    overhead: list[float] = []
    send_ms: list[float] = []
    events_per_answer: list[int] = []
    errors: list[str] = []
    for report in reports:
        for client in report["clients"]:
            if client["error"]:
                errors.append(client["error"])
                continue
            request = next(
                (
                    row
                    for content, row in by_marker.items()
                    if client["marker"] and client["marker"] in content
                ),
                None,
            )
            if request is None or request["first_token_sent_at"] is None or client["first_token_at"] is None:
                errors.append("the fake server did not see the request")
                continue
            total = (client["first_token_at"] - client["sent_at"]) * 1000
            llm = (request["first_token_sent_at"] - request["received_at"]) * 1000
            client_ttft.append(total)
            llm_ttft.append(llm)
            overhead.append(total - llm)
            send_ms.append((client["reply_at"] - client["sent_at"]) * 1000)
            events_per_answer.append(client["events"])
    lags = [lag for report in reports for lag in report["loop_lag_ms"]]
    edges: list[tuple[float, int]] = []
    for report in reports:
        for client in report["clients"]:
            if client["open_from"] is not None and client["open_until"] is not None:
                edges += [(client["open_from"], 1), (client["open_until"], -1)]
    open_now = max_open = 0
    for _, change in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        open_now += change
        max_open = max(max_open, open_now)
    answers = len(overhead)
    return {
        "clients": n,
        "api": api,
        "workload": args.workload,
        "client_processes": workers,
        "tokens_per_answer": args.tokens,
        "answer_seconds": round(args.tokens * args.token_delay, 2),
        "ramp_s": args.ramp,
        "arrivals_per_s": round(n / args.ramp, 1) if args.ramp else None,
        "max_concurrent_streams": max_open,
        "server_added_ttft_ms_p50": percentile(overhead, 0.5),
        "server_added_ttft_ms_p99": percentile(overhead, 0.99),
        "server_added_ttft_ms_max": percentile(overhead, 1.0),
        "client_ttft_ms_p50": percentile(client_ttft, 0.5),
        "fake_llm_ttft_ms_p50": percentile(llm_ttft, 0.5),
        "fake_llm_ttft_ms_p99": percentile(llm_ttft, 0.99),
        "send_message_ms_p50": percentile(send_ms, 0.5),
        "send_message_ms_p99": percentile(send_ms, 0.99),
        "token_events_per_answer_min": min(events_per_answer) if events_per_answer else None,
        "stream_errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
        "client_loop_lag_ms_p50": percentile(lags, 0.5),
        "client_loop_lag_ms_p99": percentile(lags, 0.99),
        "server_rss_mb_peak": round(peak[0] / 2**20, 1),
        "server_rss_mb_before": round(baseline_rss / 2**20, 1),
        "wall_seconds": round(wall, 2),
        "server_cpu_seconds": round(server_cpu, 2),
        "server_cpu_ms_per_answer": round(server_cpu * 1000 / answers, 1) if answers else None,
        "fake_llm_cpu_seconds": round(fake_cpu, 2),
        "client_cpu_seconds": round(sum(report["cpu_seconds"] for report in reports), 2),
        "machine_cpu_percent": machine_cpu_percent,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "mean_ttft_ms": round(statistics.mean(client_ttft), 2) if client_ttft else None,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(value) for value in args.clients.split(",")]
    root = Path(tempfile.mkdtemp(prefix="ragql-chatload-"))
    postgres = EmbeddedPostgres(root / "pg")
    serve: subprocess.Popen[bytes] | None = None
    fake: subprocess.Popen[bytes] | None = None
    repo_root = REPO_ROOT
    try:
        postgres.start()
        postgres.psql("CREATE DATABASE chatload;")
        url = postgres.url("chatload")
        await asyncio.to_thread(upgrade_to_head, url)
        fake = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
            [
                sys.executable,
                "-m",
                "tests.fake_llm_servers",
                "openai",
                "--tokens",
                str(args.tokens),
                "--token-delay",
                str(args.token_delay),
            ],
            cwd=repo_root,
            stdout=subprocess.PIPE,
        )
        assert fake.stdout is not None
        fake_info = json.loads(await asyncio.to_thread(fake.stdout.readline))
        pairs, model_id = await prepare_database(url, max(counts), fake_info["base_url"])
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET,
            "DATA_DIR": str(root / "data"),
            "MIGRATE_ON_START": "false",
            "LOG_LEVEL": "WARNING",
            "HF_HUB_OFFLINE": "1",
            "ALLOW_PRIVATE_PROVIDER_URLS": "true",  # the fake provider listens on 127.0.0.1
        }
        env.pop("REDIS_URL", None)
        ragql = str(Path(sys.executable).with_name("ragql"))
        log = open(root / "serve.log", "wb")  # noqa: ASYNC230 - set-up, before any load
        serve = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
            [ragql, "serve", "--port", str(port), "--data-dir", str(root / "data")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if serve.poll() is not None:
                    raise RuntimeError(f"ragql serve exited; see {root / 'serve.log'}")
                await asyncio.sleep(0.2)
        codec = AccessTokenCodec(SECRET.encode(), __import__("datetime").timedelta(hours=2))
        ws_url = f"ws://127.0.0.1:{port}/graphql"
        rounds = []
        for n in counts:
            for api in args.api.split(","):
                result = await run_round(
                    n,
                    pairs,
                    codec,
                    ws_url,
                    fake_info["root_url"],
                    fake_info["pid"],
                    args,
                    serve.pid,
                    api,
                    model_id,
                )
                print(json.dumps(result), flush=True)
                rounds.append(result)
                await asyncio.sleep(1.0)
        return {
            "benchmark": "chat_load",
            "tokens_per_answer": args.tokens,
            "token_delay_s": args.token_delay,
            "ramp_s": args.ramp,
            "workload": args.workload,
            "client_processes": args.client_processes,
            "cpus": os.cpu_count(),
            "rounds": rounds,
        }
    finally:
        for process in (serve, fake):
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        postgres.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--clients", default="50,200,500", help="comma-separated client counts, one round each"
    )
    parser.add_argument("--tokens", type=int, default=200, help="tokens per answer")
    parser.add_argument("--token-delay", type=float, default=0.05, help="seconds between tokens (fixed rate)")
    parser.add_argument(
        "--ramp",
        type=float,
        default=None,
        help="clients send within this many seconds (default: one answer's duration, tokens x "
        "token-delay: N concurrent streams at steady state; `--ramp 2 --tokens 40` is the burst)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="per-event client timeout")
    parser.add_argument(
        "--client-processes", type=int, default=2, help="client processes (each runs its share of clients)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server log)")
    parser.add_argument(
        "--api",
        default="graphql,openai",
        help="the doors to measure, one round each per N: graphql (WebSocket), openai (/v1 SSE)",
    )
    args = parser.parse_args()
    answer_seconds = args.tokens * args.token_delay
    if args.ramp is None:
        args.ramp = answer_seconds
    args.workload = "concurrent" if args.ramp >= answer_seconds * 0.9 else "burst"
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
