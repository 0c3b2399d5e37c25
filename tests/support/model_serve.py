"""`model serve` (the project's TF-Serving-compatible development server) as a real subprocess on
loopback, for the gateway's and the model tooling's tests: its output is collected line by line,
`wait_listening()` returns the "listening" line, `stop()` sends SIGTERM (then SIGKILL)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import requests

from support.net import free_port


class ModelServeProcess:
    def __init__(
        self, *flags: str, host: str = "127.0.0.1", grpc_port: int | None = None, rest_port: int | None = None
    ):
        self.host = host
        self.grpc_port = grpc_port or free_port(host)
        self.rest_port = rest_port or free_port(host)
        cmd = [sys.executable, "-m", "model_tools", "serve", f"--host={host}", f"--port={self.grpc_port}",
               f"--rest_api_port={self.rest_port}", *flags]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    @property
    def target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def log(self) -> str:
        return "".join(self.output)

    def wait_listening(self, timeout: float = 120.0) -> str:
        """The "model serve: listening ..." line, once the ports are open; fails with the output
        if the process exits or does not get there in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if line.startswith("model serve: listening"):
                return line
        raise AssertionError("model serve did not start:\n" + "".join(self.output[-40:]))

    def versions(self, name: str) -> dict[int, str]:
        body = requests.get(f"http://{self.host}:{self.rest_port}/v1/models/{name}", timeout=5).json()
        return {int(v["version"]): v["state"] for v in body.get("model_version_status", [])}

    def request_count(self) -> float:
        """OK requests this process answered (all APIs), from its own metrics endpoint."""
        text = requests.get(
            f"http://{self.host}:{self.rest_port}/monitoring/prometheus/metrics", timeout=5
        ).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(":tensorflow:serving:request_count{") and 'status="OK"' in line)  # fmt: skip

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
