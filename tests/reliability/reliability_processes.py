"""Real processes for the reliability tier: `model serve` and `python -m gateway`, started on
loopback, stopped by pid, plus the /proc figures (RSS, threads, fds) the leak checks compare."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import requests

from support.net import free_port

VENV_BIN = pathlib.Path(sys.executable).parent
ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL_NAME = "clothing-model"
LABELS = sorted(p.stem for p in (ROOT / "samples" / "images").glob("*.jpg"))


def proc_figures(pid: int) -> dict[str, int]:
    """Resident memory (KiB), thread count and open file descriptors of a live process."""
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_kib": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def _tail(path: pathlib.Path, size: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


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


class GatewayProcess:
    """`python -m gateway` with an environment; logs go to a file (a pipe nobody reads would
    block the gateway after 64 KiB of access log)."""

    def __init__(self, env: dict[str, str], log_dir: pathlib.Path, port: int | None = None):
        self.port = port or free_port()
        self.env = {
            **os.environ,
            **env,
            "PORT": str(self.port),
            "LISTEN_HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
        self.log_path = log_dir / f"gateway-{self.port}.log"
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        # Words put before `python -m gateway` (e.g. a shell that sets signal dispositions and
        # execs it). No preexec_fn: this test process has gRPC's threads, and a forked child
        # running Python before exec can trip their fork handlers (seen: SIGABRT on a closed epoll fd).
        self.launcher: list[str] = []

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 90) -> GatewayProcess:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [*self.launcher, sys.executable, "-m", "gateway"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{_tail(self.log_path)}")
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"gateway not healthy within {timeout} s:\n{_tail(self.log_path)}")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = requests.get(self.base + "/readyz", timeout=5)
                if last.status_code == 200:
                    return
            except requests.RequestException as error:
                last = error
            time.sleep(0.2)
        raise RuntimeError(f"gateway not ready within {timeout} s: {getattr(last, 'text', last)}")

    def figures(self) -> dict[str, int]:
        return proc_figures(self.pid)

    def log_text(self) -> str:
        return _tail(self.log_path, 200_000)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


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
