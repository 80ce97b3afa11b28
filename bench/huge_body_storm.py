"""/healthz latency while clients send huge request bodies to a real `ragql serve`.

Before the JSON body cap (issue 10) any POST /graphql could be as large as the upload limit
(251 MB), and parsing a 50 MB query blocked the event loop for 3.5–9 s (100 MB ≈ 20 s).
Now such bodies are refused with 413: on the declared Content-Length before any of the
body is read, and for chunked bodies as soon as the received bytes pass MAX_REQUEST_BODY_KB.

Starts `ragql serve` as a process (embedded PostgreSQL in a temporary data dir), measures
/healthz p50/p99 idle, then again while --clients clients (half with a declared
Content-Length, half chunked without one) send bodies of --size-mb MB to POST /graphql,
back to back for --seconds (at least --rounds each), as fast as loopback takes them. Like
most HTTP clients, a Content-Length client sends its whole body whatever the server answers
(uvicorn skips it unparsed); a chunked one stops when the server closes. Reports how fast
each huge request was refused (from the end of the request head to the 413's status line;
a chunked one has to get past the cap first) and /healthz p99 during the storm next to idle.
Prints the figures and, last, one JSON object. Targets: refused in <= 10 ms; storm p99 near idle.

    .venv/bin/python bench/huge_body_storm.py [--clients 8] [--rounds 3] [--seconds 10] [--size-mb 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.login_storm import probe_healthz, summary
from tests.serve_process import ServeProcess

REFUSED_TARGET_MS = 10.0
BLOCK = 1024 * 1024  # the clients send 1 MB blocks


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# A valid GraphQL request whose document ends in a comment of `size` bytes: one token, so the
# token limit does not stop it, and graphql-core's pure-Python lexer walks it character by
# character (the 3.5–9 s stalls for 50 MB measured before the cap).
PREFIX = b'{"query": "{ __typename } #'
SUFFIX = b'"}'
FILLER = b"a" * BLOCK


def body_parts(size: int) -> Iterator[bytes]:
    """The body in blocks of 1 MB, exactly `size` bytes in all."""
    remaining = size - len(PREFIX) - len(SUFFIX)
    yield PREFIX
    while remaining > 0:
        part = FILLER[: min(BLOCK, remaining)]
        remaining -= len(part)
        yield part
    yield SUFFIX


def huge_request(host: str, port: int, size: int, chunked: bool) -> dict[str, Any]:
    """One huge POST /graphql on a blocking socket: a sender thread pushes the body while
    this thread waits for the answer's status line."""
    connection = socket.create_connection((host, port), timeout=60)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()
    state: dict[str, Any] = {"sent": 0, "head_sent_at": None}

    def send_body() -> None:
        try:
            connection.sendall(head)
            state["head_sent_at"] = time.perf_counter()
            for part in body_parts(size):
                connection.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n" if chunked else part)
                state["sent"] += len(part)
            if chunked:
                connection.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection after answering

    sender = threading.Thread(target=send_body)
    sender.start()
    received = b""
    status_at = None
    try:
        while b"\r\n" not in received:
            data = connection.recv(65536)
            if not data:
                break
            if status_at is None:
                status_at = time.perf_counter()
            received += data
    except OSError:
        pass
    sender.join(120)
    connection.close()
    status = int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/1.1 ") else 0
    start = state["head_sent_at"]
    refused_in = (status_at - start) if status_at and start else None
    return {"status": status, "refused_in": refused_in, "sent": state["sent"], "chunked": chunked}


async def run(
    base_url: str, pid: int, clients: int, rounds: int, seconds: float, size: int
) -> dict[str, Any]:
    host, port = base_url.removeprefix("http://").split(":")
    async with httpx.AsyncClient(timeout=60) as probe:
        idle: list[float] = []
        for _ in range(300):
            started = time.perf_counter()
            (await probe.get(base_url + "/healthz")).raise_for_status()
            idle.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)

        started = time.perf_counter()
        cpu_before = cpu_seconds(pid)

        async def client(index: int) -> list[dict[str, Any]]:
            chunked = index % 2 == 1
            results: list[dict[str, Any]] = []
            # At least `rounds` requests each, and for at least `seconds` overall.
            while len(results) < rounds or time.perf_counter() - started < seconds:
                results.append(await asyncio.to_thread(huge_request, host, int(port), size, chunked))
            return results

        storm = asyncio.ensure_future(asyncio.gather(*(client(index) for index in range(clients))))
        during = await probe_healthz(probe, base_url, storm)
        storm_seconds = time.perf_counter() - started
        server_cpu = cpu_seconds(pid) - cpu_before
        requests = [result for results in storm.result() for result in results]
    declared = [r for r in requests if not r["chunked"]]
    chunked = [r for r in requests if r["chunked"]]

    def refused(group: list[dict[str, Any]]) -> dict[str, float]:
        return summary([r["refused_in"] for r in group if r["refused_in"] is not None], digits=2)

    return {
        "idle": summary(idle, digits=2),
        "storm": summary(during, digits=2),
        "storm_seconds": round(storm_seconds, 2),
        # The server process's CPU while the storm lasted (the probe's /healthz calls included).
        "server_cpu_seconds": round(server_cpu, 2),
        "mb_sent": round(sum(r["sent"] for r in requests) / BLOCK),
        "statuses": dict(Counter(str(r["status"]) for r in requests)),
        "declared_refused": refused(declared),
        "chunked_refused": refused(chunked),
        # How much of each chunked body got onto the wire before the server closed.
        "chunked_sent_mb_max": round(max(r["sent"] for r in chunked) / BLOCK, 1) if chunked else 0,
        "requests": len(requests),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8, help="half Content-Length, half chunked")
    parser.add_argument("--rounds", type=int, default=3, help="at least this many huge requests per client")
    parser.add_argument("--seconds", type=float, default=10.0, help="and keep the storm up this long")
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--max-request-body-kb", type=int, default=1024)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ragql-huge-body-storm-"))
    env = {"LOG_LEVEL": "WARNING", "MAX_REQUEST_BODY_KB": str(args.max_request_body_kb)}
    server = ServeProcess(root / "data", env=env)
    try:
        server.start(timeout=300)
        assert server.process is not None
        results = asyncio.run(
            run(
                server.base_url,
                server.process.pid,
                args.clients,
                args.rounds,
                args.seconds,
                args.size_mb * BLOCK,
            )
        )
        tracebacks = server.output().count("Traceback")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    idle, storm = results["idle"], results["storm"]
    declared, chunked = results["declared_refused"], results["chunked_refused"]
    print(
        f"{results['requests']} huge requests ({args.size_mb} MB each, {args.clients} clients) "
        f"in {results['storm_seconds']} s, statuses {results['statuses']}; {results['mb_sent']} MB sent, "
        f"server CPU {results['server_cpu_seconds']} s"
    )
    for label, figures in (("idle", idle), ("during storm", storm)):
        print(
            f"/healthz {label:>12}: p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms  "
            f"max {figures['max_ms']:7.2f} ms  ({figures['samples']} samples)"
        )
    for label, figures in (("Content-Length", declared), ("chunked", chunked)):
        print(
            f"refused ({label:>14}): p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms  "
            f"max {figures['max_ms']:7.2f} ms"
        )
    print(f"chunked bodies: at most {results['chunked_sent_mb_max']} MB sent before the server closed")
    refused_p99 = max(declared["p99_ms"], chunked["p99_ms"])
    print(
        json.dumps(
            {
                "idle_p50_ms": idle["p50_ms"],
                "idle_p99_ms": idle["p99_ms"],
                "storm_p50_ms": storm["p50_ms"],
                "storm_p99_ms": storm["p99_ms"],
                "storm_max_ms": storm["max_ms"],
                "declared_refused_p50_ms": declared["p50_ms"],
                "declared_refused_p99_ms": declared["p99_ms"],
                "chunked_refused_p50_ms": chunked["p50_ms"],
                "chunked_refused_p99_ms": chunked["p99_ms"],
                "chunked_sent_mb_max": results["chunked_sent_mb_max"],
                "mb_sent": results["mb_sent"],
                "server_cpu_seconds": results["server_cpu_seconds"],
                "storm_seconds": results["storm_seconds"],
                "statuses": results["statuses"],
                "server_tracebacks": tracebacks,
                "refused_target_ms": REFUSED_TARGET_MS,
                "ok": refused_p99 <= REFUSED_TARGET_MS and set(results["statuses"]) == {"413"},
            }
        )
    )


if __name__ == "__main__":
    main()
