"""`model serve` (the project's TF-Serving-compatible dev server) as a real subprocess, plus a
tiny real Keras model converted to a SavedModel for it to serve."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import requests

from support.tiny_model import build_tiny_classifier

TINY_LABELS = ["cat", "dog", "emu", "yak"]
TINY_SIZE = 32


def build_tiny_keras_model(seed: int = 3):
    return build_tiny_classifier(
        (TINY_SIZE, TINY_SIZE, 3), len(TINY_LABELS), filters=4, output_name="logits", seed=seed
    )


class ModelServe:
    """`python -m model_tools serve` on loopback; `request_count()` reads its Prometheus text."""

    def __init__(
        self,
        base_path: pathlib.Path,
        name: str,
        grpc_port: int,
        rest_port: int,
        host: str = "127.0.0.1",
        monitoring: pathlib.Path | None = None,
    ):
        self.host, self.grpc_port, self.rest_port, self.name = host, grpc_port, rest_port, name
        cmd = [
            sys.executable,
            "-m",
            "model_tools",
            "serve",
            f"--host={host}",
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            f"--model_name={name}",
            f"--model_base_path={base_path}",
            "--file_system_poll_wait_seconds=0.5",
        ]
        if monitoring:
            cmd.append(f"--monitoring_config_file={monitoring}")
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        threading.Thread(target=lambda: self.output.extend(self.proc.stdout), daemon=True).start()

    @property
    def target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def wait_ready(self, timeout: float = 120) -> ModelServe:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("model serve exited:\n" + "".join(self.output[-40:]))
            if any(line.startswith("model serve: listening") for line in self.output):
                return self
            time.sleep(0.2)
        raise RuntimeError("model serve did not start:\n" + "".join(self.output[-40:]))

    def versions(self) -> dict[int, str]:
        body = requests.get(f"http://{self.host}:{self.rest_port}/v1/models/{self.name}", timeout=5).json()
        return {int(v["version"]): v["state"] for v in body.get("model_version_status", [])}

    def request_count(self) -> float:
        """OK requests this process answered (all APIs), from its own metrics endpoint."""
        text = requests.get(
            f"http://{self.host}:{self.rest_port}/monitoring/prometheus/metrics", timeout=5
        ).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(":tensorflow:serving:request_count{") and 'status="OK"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
