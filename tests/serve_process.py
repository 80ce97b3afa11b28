"""Run `ragql serve` as a real subprocess (for tests and benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests import log_secrets

RAGQL = str(Path(sys.executable).with_name("ragql"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServeProcess:
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None
    log_path: Path | None = None
    started_in_seconds: float = 0.0
    _output_collected: bool = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> ServeProcess:
        environment = {**os.environ, "HF_HUB_OFFLINE": "1", **self.env}
        self.log_path = self.data_dir.parent / f"serve-{self.port}.log"
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("w")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [RAGQL, "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            text=True,
        )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ragql serve exited early:\n{self.output()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    self.started_in_seconds = time.monotonic() - started
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"ragql serve did not become healthy:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self, timeout: float = 30) -> int | None:
        try:
            if self.process is None or self.process.poll() is not None:
                return self.process.returncode if self.process else None
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(10)
        finally:
            if not self._output_collected and self.process is not None:
                # The run-wide check for secrets in logs (tests/log_secrets.py) reads it at the end.
                self._output_collected = True
                log_secrets.remember_output(self.output())
