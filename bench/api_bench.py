"""API list-query benchmark: latency and SQL statements per request for `models` and `users`.

    .venv/bin/python bench/api_bench.py [--data-dir DIR] [--requests N]

Seeds 10,000 users, 200 access groups and 1,000 models (bulk inserts) into a fresh embedded
database in --data-dir (default: a new temporary directory), starts the real server, and
measures the list queries at page sizes 10 and 100: as an admin, and (for models) as a plain
user whose access comes through group grants. SQL statements are counted with a
`before_cursor_execute` listener on the app's engine; they must not depend on the page size
(dataloaders), which the script asserts. The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import event, insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gql_server.app import create_app
from gql_server.auth.passwords import hash_password
from gql_server.db.models import AccessGroup, GroupMembership, ModelAccessGrant, RagModel, Role, User
from gql_server.settings import Settings

USERS, GROUPS, MODELS = 10_000, 200, 1_000
PAGE_SIZES = (10, 100)

MODELS_ADMIN = """query($n: Int!) { models(first: $n) { totalCount items { id name provider documentCount
  temperature apiKeySet grants { id group { name } user { email } } } } }"""
MODELS_USER = "query($n: Int!) { models(first: $n) { totalCount items { id name provider documentCount } } }"
USERS_ADMIN = (
    "query($n: Int!) { users(first: $n) { totalCount items { id email role groups { name memberCount } } } }"
)


async def seed(sessionmaker: Any) -> tuple[uuid.UUID, uuid.UUID]:
    rng = random.Random(7)
    password_hash = hash_password("bench-password-1")
    user_ids = [uuid.uuid4() for _ in range(USERS)]
    group_ids = [uuid.uuid4() for _ in range(GROUPS)]
    model_ids = [uuid.uuid4() for _ in range(MODELS)]
    async with sessionmaker.begin() as session:
        rows = [
            {
                "id": user_id,
                "email": f"user{index:05d}@bench.example",
                "display_name": f"User {index}",
                "password_hash": password_hash,
                "role": Role.ADMIN if index == 0 else Role.USER,
            }
            for index, user_id in enumerate(user_ids)
        ]
        for start in range(0, len(rows), 2000):
            await session.execute(insert(User), rows[start : start + 2000])
        await session.execute(
            insert(AccessGroup), [{"id": gid, "name": f"group {i:03d}"} for i, gid in enumerate(group_ids)]
        )
        memberships = [
            {"group_id": gid, "user_id": uid} for uid in user_ids for gid in rng.sample(group_ids, 3)
        ]
        for start in range(0, len(memberships), 5000):
            await session.execute(insert(GroupMembership), memberships[start : start + 5000])
        await session.execute(
            insert(RagModel),
            [
                {"id": mid, "name": f"model {i:04d}", "description": "bench"}
                for i, mid in enumerate(model_ids)
            ],
        )
        grants = [
            {"id": uuid.uuid4(), "model_id": mid, "group_id": gid}
            for gid in group_ids
            for mid in rng.sample(model_ids, 15)
        ]
        grants = list({(g["model_id"], g["group_id"]): g for g in grants}.values())
        await session.execute(insert(ModelAccessGrant), grants)
    return user_ids[0], user_ids[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure(
    http: httpx.AsyncClient, url: str, token: str, query: str, size: int, requests: int, counter: list[int]
) -> dict[str, Any]:
    latencies, statements = [], set()
    for attempt in range(requests + 3):
        counter[0] = 0
        started = time.perf_counter()
        response = await http.post(
            url, json={"query": query, "variables": {"n": size}}, headers={"Authorization": f"Bearer {token}"}
        )
        elapsed = (time.perf_counter() - started) * 1000
        body = response.json()
        assert not body.get("errors"), body["errors"]
        field = next(iter(body["data"].values()))
        assert len(field["items"]) == min(size, field["totalCount"]), (
            len(field["items"]),
            field["totalCount"],
        )
        if attempt >= 3:  # warm-up excluded
            latencies.append(elapsed)
            statements.add(counter[0])
    assert len(statements) == 1, f"statement count varies between requests: {statements}"
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(percentile(latencies, 0.95), 2),
        "statements": statements.pop(),
        "items": len(field["items"]),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="ragql-api-bench-"))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        database_url=None,
        redis_url=None,
        secret_key="bench-secret-key-that-is-long-enough-0123456789",  # type: ignore[arg-type]
        superadmin_email="root@bench.example",
        superadmin_password="superadmin-password-1",  # type: ignore[arg-type]
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/graphql"
    state = app.state.app_state
    try:
        started = time.perf_counter()
        admin_id, user_id = await seed(state.sessionmaker)
        seed_seconds = round(time.perf_counter() - started, 1)
        print(
            f"seeded {USERS} users, {GROUPS} groups, {MODELS} models in {seed_seconds}s ({data_dir})",
            flush=True,
        )
        counter = [0]

        def count(*_: Any) -> None:
            counter[0] += 1

        event.listen(state.engine.sync_engine, "before_cursor_execute", count)
        admin_token = state.tokens.issue(admin_id, 0).token
        user_token = state.tokens.issue(user_id, 0).token
        figures: dict[str, Any] = {"seed_seconds": seed_seconds, "requests_per_case": args.requests}
        cases = [
            ("models_admin", admin_token, MODELS_ADMIN),
            ("models_user", user_token, MODELS_USER),
            ("users_admin", admin_token, USERS_ADMIN),
        ]
        async with httpx.AsyncClient(timeout=60) as http:
            for name, token, query in cases:
                per_size = {}
                for size in PAGE_SIZES:
                    per_size[str(size)] = await measure(http, url, token, query, size, args.requests, counter)
                    result = per_size[str(size)]
                    print(
                        f"{name:13s} first={size:3d}: p50 {result['p50_ms']:7.2f} ms  p95 {result['p95_ms']:7.2f} ms  "
                        f"SQL statements/request {result['statements']}  items {result['items']}",
                        flush=True,
                    )
                statements = {result["statements"] for result in per_size.values()}
                assert len(statements) == 1, f"{name}: SQL statements differ by page size: {per_size}"
                print(f"{name}: statements equal for page sizes {PAGE_SIZES}: {statements.pop()}", flush=True)
                figures[name] = per_size
        print(json.dumps(figures))
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
