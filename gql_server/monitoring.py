"""Process health figures at `GET /metrics` (Prometheus text format).

The event-loop lag monitor is a task that sleeps `interval` seconds in a loop and records
how late it wakes up: anything that holds the loop (CPU work that slipped onto it, a
blocking call) shows up as overshoot. It keeps the maximum exactly and a histogram at
1 ms resolution for the p99, both since start or since the last `reset()` — bounded
memory however long the server runs. A `POST /metrics/reset` starts a new measurement
window (used by benchmarks around one piece of work).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gql_server.state import AppState

LAG_MONITOR_EXTRA = "event_loop_lag_monitor"
LAG_SAMPLE_INTERVAL_SECONDS = 0.02
_HISTOGRAM_MAX_MILLISECONDS = 2000  # overshoots above this share the last bucket


class EventLoopLagMonitor:
    def __init__(self, interval: float = LAG_SAMPLE_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self.reset()

    def reset(self) -> None:
        self.max_lag = 0.0
        self.samples = 0
        self._histogram = [0] * (_HISTOGRAM_MAX_MILLISECONDS + 1)

    def record(self, lag: float) -> None:
        lag = max(lag, 0.0)
        self.max_lag = max(self.max_lag, lag)
        self.samples += 1
        self._histogram[min(int(lag * 1000), _HISTOGRAM_MAX_MILLISECONDS)] += 1

    def percentile(self, fraction: float) -> float:
        """Upper edge of the 1 ms bucket holding the given fraction of samples (0 if none)."""
        if self.samples == 0:
            return 0.0
        wanted = fraction * self.samples
        seen = 0
        for milliseconds, count in enumerate(self._histogram):
            seen += count
            if seen >= wanted:
                return min((milliseconds + 1) / 1000, self.max_lag)
        return self.max_lag

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
async def lag_monitor_lifespan(state: AppState) -> AsyncIterator[None]:
    monitor = EventLoopLagMonitor()
    monitor.start()
    state.extras[LAG_MONITOR_EXTRA] = monitor
    try:
        yield
    finally:
        state.extras.pop(LAG_MONITOR_EXTRA, None)
        await monitor.stop()


def _memory_bytes() -> tuple[int, int]:
    """(current, peak) resident set size of this process, from /proc (0, 0 where unavailable)."""
    values = {"VmRSS": 0, "VmHWM": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def render_metrics(monitor: EventLoopLagMonitor | None) -> str:
    rss, peak = _memory_bytes()
    lines = [
        "# HELP ragql_process_resident_memory_bytes Resident memory of the server process.",
        "# TYPE ragql_process_resident_memory_bytes gauge",
        f"ragql_process_resident_memory_bytes {rss}",
        "# HELP ragql_process_resident_memory_peak_bytes Peak resident memory of the server process since it started.",
        "# TYPE ragql_process_resident_memory_peak_bytes gauge",
        f"ragql_process_resident_memory_peak_bytes {peak}",
    ]
    if monitor is not None:
        lines += [
            "# HELP ragql_event_loop_lag_max_seconds Longest event-loop block seen since start or reset.",
            "# TYPE ragql_event_loop_lag_max_seconds gauge",
            f"ragql_event_loop_lag_max_seconds {monitor.max_lag:.6f}",
            "# HELP ragql_event_loop_lag_p99_seconds 99th percentile of event-loop lag since start or reset.",
            "# TYPE ragql_event_loop_lag_p99_seconds gauge",
            f"ragql_event_loop_lag_p99_seconds {monitor.percentile(0.99):.6f}",
            "# HELP ragql_event_loop_lag_samples Lag samples since start or reset.",
            "# TYPE ragql_event_loop_lag_samples gauge",
            f"ragql_event_loop_lag_samples {monitor.samples}",
        ]
    return "\n".join(lines) + "\n"


def _monitor(request: Request) -> EventLoopLagMonitor | None:
    state: AppState = request.state.app_state
    monitor = state.extras.get(LAG_MONITOR_EXTRA)
    return monitor if isinstance(monitor, EventLoopLagMonitor) else None


async def metrics(request: Request) -> Response:
    return PlainTextResponse(render_metrics(_monitor(request)), media_type="text/plain; version=0.0.4")


async def reset_metrics(request: Request) -> Response:
    # Resetting changes what every scraper sees: only a local operator (or the benchmark
    # on the same machine) may do it.
    if request.client is None or request.client.host not in ("127.0.0.1", "::1"):
        return PlainTextResponse("metrics can only be reset from the server's own machine", status_code=403)
    monitor = _monitor(request)
    if monitor is not None:
        monitor.reset()
    return Response(status_code=204)


def metrics_route() -> Route:
    return Route("/metrics", metrics, methods=["GET"])


def metrics_reset_route() -> Route:
    return Route("/metrics/reset", reset_metrics, methods=["POST"])
