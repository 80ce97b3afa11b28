"""`GET /metrics`: event-loop lag and memory in Prometheus text format."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gql_server.monitoring import EventLoopLagMonitor
from tests.conftest import RunningServer


def _values(body: str) -> dict[str, float]:
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in body.splitlines() if not line.startswith("#"))
    }


@pytest.mark.asyncio
async def test_metrics_report_a_blocked_event_loop_and_reset(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.post("/metrics/reset")).status_code == 204
        await asyncio.sleep(0.1)
        time.sleep(0.3)  # noqa: ASYNC251 -- blocking the loop the server runs on is the point
        await asyncio.sleep(0.1)
        response = await http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        values = _values(response.text)
        assert 0.25 <= values["ragql_event_loop_lag_max_seconds"] < 1.0
        assert 0 <= values["ragql_event_loop_lag_p99_seconds"] <= values["ragql_event_loop_lag_max_seconds"]
        assert values["ragql_process_resident_memory_bytes"] > 10 * 2**20
        assert (
            values["ragql_process_resident_memory_peak_bytes"]
            >= values["ragql_process_resident_memory_bytes"]
        )

        await http.post("/metrics/reset")
        await asyncio.sleep(0.1)
        assert _values((await http.get("/metrics")).text)["ragql_event_loop_lag_max_seconds"] < 0.25


def test_lag_percentile_uses_the_histogram() -> None:
    monitor = EventLoopLagMonitor()
    for _ in range(99):
        monitor.record(0.0005)
    monitor.record(0.5)
    assert monitor.max_lag == 0.5
    assert monitor.percentile(0.99) == 0.001
    assert monitor.percentile(1.0) == 0.5
