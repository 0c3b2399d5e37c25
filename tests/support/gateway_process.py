"""`python -m gateway` as a real process on a free loopback port, its output in a log file (a
pipe nobody reads would block the gateway after 64 KiB of access log). Used by the gateway's
process tests and the reliability tier."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import requests

from support.net import free_port


def proc_figures(pid: int) -> dict[str, int]:
    """Resident memory (KiB) now and at its peak since start, thread count and open file
    descriptors of a live process."""
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_kib": int(fields["VmRSS"].split()[0]),
        "peak_rss_kib": int(fields["VmHWM"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def tail(path: pathlib.Path, size: int = 4000) -> str:
    """The last `size` characters of a log file ("" if it does not exist)."""
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


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
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{tail(self.log_path)}")
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"gateway not healthy within {timeout} s:\n{tail(self.log_path)}")

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
        return tail(self.log_path, 200_000)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()
