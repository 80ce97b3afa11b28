"""Chat streaming under load: N concurrent WebSocket clients against one `ragql serve` process.

    .venv/bin/python bench/chat_load.py [--clients 50,200,500] [--tokens 40] [--token-delay 0.05]

Set-up (all local, nothing downloaded): an embedded PostgreSQL in a temporary directory,
migrated; one OPENAI_COMPATIBLE model whose base URL is the fake OpenAI server from
tests/fake_llm_servers.py (run in a thread here, streaming `--tokens` tokens every
`--token-delay` seconds on a fixed schedule); N users written straight to the database
(at most one generation per user, so one user per concurrent client), each granted the
model and given one chat session; access tokens minted with the server's secret. The model
has no documents, so retrieval is one EXISTS query: what is measured is the chat path.

`ragql serve` runs as a subprocess with its own data dir and DATABASE_URL. Per round, the
N clients connect (graphql-transport-ws), then each sends `sendMessage` over its socket at
a uniformly random moment within `--ramp` seconds, subscribes to `messageStream` with the
returned id and reads until DONE/ERROR. Time to first token (TTFT) is measured on the
client from sending the mutation to receiving the first TOKEN; the fake server records
when it received each request and sent its first token, and the server-added TTFT is the
client TTFT minus that. Errors are ERROR events, GraphQL errors, wrong token counts or
dropped sockets. Server RSS is sampled every 0.2 s (peak reported). The last line printed
is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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
from tests.fake_llm_servers import DEFAULT_MODEL_NAME, FakeBehaviour, FakeOpenAIServer

SECRET = "chat-load-bench-secret-key-0123456789-abcdefghijklmnop"
SEND = (
    "mutation($s: UUID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { __typename "
    "... on MessageSent { messageId } ... on Error { message } } }"
)
STREAM = (
    "subscription($m: UUID!) { messageStream(messageId: $m) { __typename "
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


async def prepare_database(url: str, users: int, fake_base_url: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Users, one model, grants and one chat session per user; returns (user id, session id)."""
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
        for index in range(users):
            user = User(id=uuid.uuid4(), email=f"bench-{index}@example.com", password_hash=password_hash)
            session.add(user)
            await session.flush()
            session.add(ModelAccessGrant(model_id=model.id, user_id=user.id))
            chat = ChatSession(id=uuid.uuid4(), user_id=user.id, model_id=model.id, title="bench")
            session.add(chat)
            pairs.append((user.id, chat.id))
    await engine.dispose()
    return pairs


class Client:
    def __init__(self, index: int, token: str, session_id: uuid.UUID) -> None:
        self.index = index
        self.token = token
        self.session_id = session_id
        self.socket: Any = None
        self.marker = ""
        self.sent_at = 0.0
        self.first_token_at: float | None = None
        self.tokens = 0
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

    async def run(self, round_name: str, delay: float, expected_tokens: int, timeout: float) -> None:
        await asyncio.sleep(delay)
        self.marker = f"bench question {round_name}-{self.index} {uuid.uuid4().hex[:8]}"
        try:
            self.sent_at = time.perf_counter()
            await self.socket.send(
                json.dumps(
                    {
                        "id": "send",
                        "type": "subscribe",
                        "payload": {
                            "query": SEND,
                            "variables": {"s": str(self.session_id), "c": self.marker},
                        },
                    }
                )
            )
            reply = await self._next("send", timeout)
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
                    self.tokens += 1
                elif kind == "DoneEvent":
                    await self._next("stream", timeout)  # complete
                    if self.tokens != expected_tokens:
                        self.error = f"{self.tokens} tokens instead of {expected_tokens}"
                    return
                elif kind == "ErrorEvent":
                    self.error = f"ERROR event: {event['message']}"
                    return
        except Exception as failure:
            self.error = f"{type(failure).__name__}: {failure}"


async def sample_rss(pid: int, stop: asyncio.Event, peak: list[int]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        await asyncio.sleep(0.2)


async def run_round(
    n: int,
    pairs: list[tuple[uuid.UUID, uuid.UUID]],
    codec: AccessTokenCodec,
    ws_url: str,
    fake: FakeOpenAIServer,
    args: argparse.Namespace,
    server_pid: int,
) -> dict[str, Any]:
    clients = [
        Client(index, codec.issue(user_id, 0).token, session_id)
        for index, (user_id, session_id) in enumerate(pairs[:n])
    ]
    connect_errors = 0
    for start in range(0, n, 50):
        results = await asyncio.gather(
            *(client.connect(ws_url) for client in clients[start : start + 50]), return_exceptions=True
        )
        connect_errors += sum(isinstance(result, Exception) for result in results)
    baseline_rss = psutil.Process(server_pid).memory_info().rss
    stop, peak = asyncio.Event(), [baseline_rss]
    sampler = asyncio.create_task(sample_rss(server_pid, stop, peak))
    ramp = args.ramp
    server_process, own_process = psutil.Process(server_pid), psutil.Process()
    server_cpu_before, own_cpu_before = server_process.cpu_times(), own_process.cpu_times()
    psutil.cpu_percent()
    started = time.perf_counter()
    await asyncio.gather(
        *(
            client.run(f"n{n}", random.uniform(0, ramp), args.tokens, args.timeout)
            for client in clients
            if client.socket
        )
    )
    wall = time.perf_counter() - started
    server_cpu_after, own_cpu_after = server_process.cpu_times(), own_process.cpu_times()
    machine_cpu_percent = psutil.cpu_percent()
    server_cpu = (server_cpu_after.user + server_cpu_after.system) - (
        server_cpu_before.user + server_cpu_before.system
    )
    own_cpu = (own_cpu_after.user + own_cpu_after.system) - (own_cpu_before.user + own_cpu_before.system)
    stop.set()
    await sampler
    for client in clients:
        if client.socket is not None:
            await client.socket.close()
    requests = {str(request.body["messages"][-1]["content"]): request for request in fake.chat_requests()}
    client_ttft: list[float] = []
    server_ttft: list[float] = []
    overhead: list[float] = []
    for client in clients:
        if client.error or client.first_token_at is None:
            continue
        request = next((r for content, r in requests.items() if client.marker in content), None)
        if request is None or request.first_token_sent_at is None:
            client.error = "the fake server did not see the request"
            continue
        total = (client.first_token_at - client.sent_at) * 1000
        llm = (request.first_token_sent_at - request.received_at) * 1000
        client_ttft.append(total)
        server_ttft.append(llm)
        overhead.append(total - llm)
    errors = [client.error for client in clients if client.error] + ["connect failed"] * connect_errors
    return {
        "clients": n,
        "server_added_ttft_ms_p50": percentile(overhead, 0.5),
        "server_added_ttft_ms_p99": percentile(overhead, 0.99),
        "server_added_ttft_ms_max": percentile(overhead, 1.0),
        "client_ttft_ms_p50": percentile(client_ttft, 0.5),
        "fake_llm_ttft_ms_p50": percentile(server_ttft, 0.5),
        "stream_errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
        "server_rss_mb_peak": round(peak[0] / 2**20, 1),
        "server_rss_mb_before": round(baseline_rss / 2**20, 1),
        "wall_seconds": round(wall, 2),
        "server_cpu_seconds": round(server_cpu, 2),
        "bench_cpu_seconds": round(own_cpu, 2),
        "machine_cpu_percent": machine_cpu_percent,
        "mean_ttft_ms": round(statistics.mean(client_ttft), 2) if client_ttft else None,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(value) for value in args.clients.split(",")]
    root = Path(tempfile.mkdtemp(prefix="ragql-chatload-"))
    postgres = EmbeddedPostgres(root / "pg")
    serve: subprocess.Popen[bytes] | None = None
    fake = FakeOpenAIServer(
        FakeBehaviour(tokens=[f"tok{i} " for i in range(args.tokens)], token_delay_s=args.token_delay)
    )
    try:
        postgres.start()
        postgres.psql("CREATE DATABASE chatload;")
        url = postgres.url("chatload")
        await asyncio.to_thread(upgrade_to_head, url)
        with fake.serve_in_thread():
            pairs = await prepare_database(url, max(counts), fake.base_url)
            port = free_port()
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "SECRET_KEY": SECRET,
                "DATA_DIR": str(root / "data"),
                "MIGRATE_ON_START": "false",
                "LOG_LEVEL": "WARNING",
                "REDIS_URL": "",
                "HF_HUB_OFFLINE": "1",
            }
            env.pop("REDIS_URL")
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
                result = await run_round(n, pairs, codec, ws_url, fake, args, serve.pid)
                print(json.dumps(result), flush=True)
                rounds.append(result)
                await asyncio.sleep(1.0)
        return {
            "benchmark": "chat_load",
            "tokens_per_answer": args.tokens,
            "token_delay_s": args.token_delay,
            "ramp_s": args.ramp,
            "cpus": os.cpu_count(),
            "rounds": rounds,
        }
    finally:
        if serve is not None:
            serve.terminate()
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
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
    parser.add_argument("--tokens", type=int, default=40, help="tokens per answer")
    parser.add_argument("--token-delay", type=float, default=0.05, help="seconds between tokens (fixed rate)")
    parser.add_argument("--ramp", type=float, default=2.0, help="clients send within this many seconds")
    parser.add_argument("--timeout", type=float, default=120.0, help="per-event client timeout")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server log)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
