"""Process health figures at `GET /metrics` (Prometheus text format, prometheus-client).

What is exported, from one registry per app (so two apps in one process, as in the tests,
never share or collide):

- prometheus-client's process collector under the `ragql` namespace:
  `ragql_process_resident_memory_bytes`, `ragql_process_cpu_seconds_total`, open file
  descriptors, start time, ...;
- `ragql_process_resident_memory_peak_bytes`: the peak RSS since start (VmHWM), which the
  process collector does not report;
- `ragql_event_loop_lag_seconds`: a histogram of how late the event loop wakes up.

The event-loop lag monitor is a task that sleeps `interval` seconds in a loop and records
how late it wakes up: anything that holds the loop (CPU work that slipped onto it, a
blocking call) shows up as overshoot. A histogram has bounded memory however long the
server runs, and, being cumulative, it is read the Prometheus way: a window is the
difference of two scrapes (`histogram_quantile(0.99, rate(...[5m]))` in PromQL;
`lag_between(before, after)` here, for the tests and bench/ingest_bench.py). Nothing is
ever reset, so every scraper sees the same monotonic series.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram, ProcessCollector
from prometheus_client import generate_latest as render_registry
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from gql_server.state import AppState


LAG_SAMPLE_INTERVAL_SECONDS = 0.02
LAG_HISTOGRAM = "ragql_event_loop_lag_seconds"
# 1 ms to 10 s, each edge ~1.5x the one below, so a window's p99 or maximum is known to
# within that factor (the hand-written histogram before had 1 ms buckets but needed a
# reset endpoint). A healthy loop wakes within 1-2 ms of the 20 ms tick; a stray blocking
# call (a sync parse, a CPU-bound loop) lands in the tens or hundreds of milliseconds.
LAG_BUCKETS_SECONDS = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip


def _peak_memory_bytes() -> float:
    """Peak resident set size of this process (VmHWM in /proc; 0 where unavailable)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key == "VmHWM":
                return int(rest.split()[0]) * 1024
    return 0


class EventLoopLagMonitor:
    """Samples the event loop's lag into a histogram; `registry` is everything `/metrics`
    renders (the process collector, the peak RSS gauge and this histogram)."""

    def __init__(self, interval: float = LAG_SAMPLE_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self.registry = CollectorRegistry()
        ProcessCollector(namespace="ragql", registry=self.registry)
        Gauge(
            "ragql_process_resident_memory_peak_bytes",
            "Peak resident memory of the server process since it started.",
            registry=self.registry,
        ).set_function(_peak_memory_bytes)
        self._lag = Histogram(
            LAG_HISTOGRAM,
            "How late the event loop woke up from a 20 ms sleep.",
            buckets=LAG_BUCKETS_SECONDS,
            registry=self.registry,
        )

    def record(self, lag: float) -> None:
        self._lag.observe(max(lag, 0.0))

    def render(self) -> bytes:
        return render_registry(self.registry)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.record(loop.time() - before - self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-loop-lag-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


@contextlib.asynccontextmanager
async def running_lag_monitor() -> AsyncIterator[EventLoopLagMonitor]:
    monitor = EventLoopLagMonitor()
    monitor.start()
    try:
        yield monitor
    finally:
        await monitor.stop()


async def metrics(request: Request) -> Response:
    state: AppState = request.state.app_state
    return Response(state.lag_monitor.render(), media_type=CONTENT_TYPE_LATEST)


def metrics_route() -> Route:
    return Route("/metrics", metrics, methods=["GET"])


# --------------------------------------------------------------- reading a window of lag


@dataclass(frozen=True)
class LagWindow:
    """The lag samples taken between two scrapes of `/metrics`.

    `buckets` are (upper bound in seconds, samples at or below it), cumulative as in the
    exposition format, the last bound being +Inf. Figures are bucket edges: a quantile or
    the maximum is "at most this many seconds" (and more than the bucket below)."""

    samples: int
    total_seconds: float
    buckets: tuple[tuple[float, int], ...]

    def quantile(self, fraction: float) -> float:
        """Upper edge of the bucket holding the given fraction of samples (0 if none)."""
        if self.samples == 0:
            return 0.0
        wanted = fraction * self.samples
        for bound, cumulative in self.buckets:
            if cumulative >= wanted:
                return bound
        return math.inf

    @property
    def max_at_most(self) -> float:
        """Upper edge of the highest bucket that gained a sample (0 if none)."""
        return self.quantile(1.0)


def _lag_series(text: str) -> tuple[int, float, dict[float, int]]:
    count, total, buckets = 0, 0.0, {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{LAG_HISTOGRAM}_bucket":
                buckets[float(sample.labels["le"])] = int(sample.value)
            elif sample.name == f"{LAG_HISTOGRAM}_count":
                count = int(sample.value)
            elif sample.name == f"{LAG_HISTOGRAM}_sum":
                total = sample.value
    return count, total, buckets


def lag_between(before: str, after: str) -> LagWindow:
    """The window between two `/metrics` bodies of the same server (`before` may be "")."""
    count_before, total_before, buckets_before = _lag_series(before)
    count_after, total_after, buckets_after = _lag_series(after)
    return LagWindow(
        samples=count_after - count_before,
        total_seconds=total_after - total_before,
        buckets=tuple(
            (bound, cumulative - buckets_before.get(bound, 0))
            for bound, cumulative in sorted(buckets_after.items())
        ),
    )
