"""`GET /metrics`: event-loop lag and memory in Prometheus text format."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gql_server.monitoring import EventLoopLagMonitor, lag_between
from tests.conftest import RunningServer


def _values(body: str) -> dict[str, float]:
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in body.splitlines() if not line.startswith("#"))
    }


@pytest.mark.asyncio
async def test_metrics_report_a_blocked_event_loop_in_a_window(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        # The histogram is cumulative: a window is the difference of two scrapes.
        before = (await http.get("/metrics")).text
        await asyncio.sleep(0.1)
        time.sleep(0.3)  # noqa: ASYNC251 -- blocking the loop the server runs on is the point
        await asyncio.sleep(0.1)
        response = await http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        values = _values(response.text)
        window = lag_between(before, response.text)
        # The block is one sample in the (0.2, 0.5] s bucket: the window's maximum is at most
        # 0.5 s, more than 0.2 s; the sum of the window counts the block in full.
        assert 0.25 <= window.max_at_most < 1.0
        assert window.total_seconds >= 0.25
        assert 0 <= window.quantile(0.99) <= window.max_at_most
        assert values["ragql_process_resident_memory_bytes"] > 10 * 2**20
        assert (
            values["ragql_process_resident_memory_peak_bytes"]
            >= values["ragql_process_resident_memory_bytes"]
        )
        assert values["ragql_process_cpu_seconds_total"] > 0

        # A later window without a block sees none, though the series never restarts.
        quiet_start = response.text
        await asyncio.sleep(0.1)
        quiet = lag_between(quiet_start, (await http.get("/metrics")).text)
        assert quiet.samples > 0 and quiet.max_at_most < 0.25


def test_lag_quantiles_come_from_the_histogram() -> None:
    monitor = EventLoopLagMonitor()
    before = monitor.render().decode()
    for _ in range(99):
        monitor.record(0.0005)
    monitor.record(0.5)
    window = lag_between(before, monitor.render().decode())
    assert window.samples == 100
    assert window.max_at_most == 0.5
    assert window.quantile(0.99) == 0.001
    assert window.quantile(1.0) == 0.5
