"""Real processes for the reliability tier: `model serve` and `python -m gateway`, started on
loopback, stopped by pid, plus the /proc figures (RSS, threads, fds) the leak checks compare."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

from support.gateway_process import GatewayProcess, tail  # noqa: F401 - GatewayProcess: re-exported for this tier
from support.net import free_port

VENV_BIN = pathlib.Path(sys.executable).parent
ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL_NAME = "clothing-model"
LABELS = sorted(p.stem for p in (ROOT / "samples" / "images").glob("*.jpg"))


def _tail(path: pathlib.Path, size: int = 4000) -> str:
    return tail(path, size)


class ModelServerProcess:
    """`model serve` for one model base path on a fixed loopback gRPC port (fixed so that a
    restart comes back where the gateway's channel expects it)."""

    def __init__(
        self, base_path: pathlib.Path, model_name: str, log_dir: pathlib.Path, port: int | None = None
    ):
        self.base_path = base_path
        self.model_name = model_name
        self.port = port or free_port()
        self.log_path = log_dir / f"model-serve-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> ModelServerProcess:
        command = [
            str(VENV_BIN / "model"),
            "serve",
            "--host",
            "127.0.0.1",
            f"--port={self.port}",
            "--rest_api_port=0",
            f"--model_name={self.model_name}",
            f"--model_base_path={self.base_path}",
            "--file_system_poll_wait_seconds=0",
            "--grpc_workers=32",
            "--log_level=WARNING",
        ]
        log = open(self.log_path, "ab")
        offset = log.tell()  # a restart appends to the same log: look only at the new part
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"model serve exited with {self.process.returncode}:\n{_tail(self.log_path)}"
                )
            if b"model serve: listening" in self._log_since(offset):
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"model serve not listening within {timeout} s:\n{_tail(self.log_path)}")

    def _log_since(self, offset: int) -> bytes:
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read()

    def kill(self) -> None:
        """SIGKILL: the crash case (no goodbye to open gRPC streams)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


def gateway_env(model_target: str, image_server_port: int, **extra: str) -> dict[str, str]:
    env = {
        "TF_SERVING_HOST": model_target,
        "MODEL_NAME": MODEL_NAME,
        "FETCH_ALLOWED_NETWORKS": "127.0.0.3/32",
        "FETCH_ALLOWED_PORTS": f"80,443,{image_server_port}",
        "LOG_LEVEL": "WARNING",
        "READY_CACHE_SECONDS": "0",
    }
    env.update(extra)
    return env
