"""Start and stop the processes a benchmark run needs: nginx for the images and the gateways.

Every server binds 127.0.0.1 on a free port and logs to a file in the run's work directory.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import requests

REPO = pathlib.Path(__file__).resolve().parent.parent
VENV_BIN = pathlib.Path(sys.executable).parent


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat_fields(path: pathlib.Path) -> list[str] | None:
    """The fields after "pid (comm)" of a /proc/<pid>[/task/<tid>]/stat, None if it exited:
    state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ..."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _ticks(fields: list[str]) -> int:
    """User + system clock ticks from `_stat_fields`."""
    return int(fields[11]) + int(fields[12])


def _stat(path: pathlib.Path) -> tuple[int, int] | None:
    """(process group, user + system clock ticks) from a /proc/<pid>/stat, None if it exited."""
    fields = _stat_fields(path)
    return (int(fields[2]), _ticks(fields)) if fields else None


def group_pids(group: int) -> list[int]:
    """The live processes of process group `group` (a Server's: its process and any workers)."""
    return [
        int(path.parent.name)
        for path in pathlib.Path("/proc").glob("[0-9]*/stat")
        if (stat := _stat(path)) and stat[0] == group
    ]


@dataclasses.dataclass(frozen=True)
class ThreadCounters:
    """What one thread has cost so far: CPU seconds, context switches it asked for (blocking on
    I/O, a lock, the GIL) and ones forced on it (preempted), minor page faults."""

    name: str
    cpu_seconds: float
    voluntary_switches: int
    involuntary_switches: int
    minor_faults: int


def thread_counters(pid: int) -> dict[int, ThreadCounters]:
    """Every live thread of process `pid` by thread id, from /proc/<pid>/task/<tid>/{stat,status}."""
    counters = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        fields = _stat_fields(task / "stat")
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        if fields is None:
            continue
        values = {
            key: value.strip() for key, _, value in (line.partition(":") for line in status.splitlines())
        }
        counters[int(task.name)] = ThreadCounters(
            name=values["Name"],
            cpu_seconds=_ticks(fields) / _CLOCK_TICKS,
            voluntary_switches=int(values["voluntary_ctxt_switches"]),
            involuntary_switches=int(values["nonvoluntary_ctxt_switches"]),
            minor_faults=int(fields[7]),
        )
    return counters


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by one process (0 if it has exited)."""
    stat = _stat(pathlib.Path(f"/proc/{pid}/stat"))
    return stat[1] / _CLOCK_TICKS if stat else 0.0


class Server:
    """A child process in its own process group (so its workers stop with it) on `port`."""

    def __init__(
        self, name: str, argv: list[str], port: int, log: pathlib.Path, env: dict[str, str] | None = None
    ):
        self.name, self.argv, self.port, self.log = name, argv, port, log
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_listening(self, timeout: float = 90.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; "
                    f"see {self.log}:\n{self.log.read_text()[-2000:]}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not listen on {self.port} within {timeout}s")

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by every process of the server's process group
        (gunicorn's workers too): CPU per request holds up on a busy machine, where req/s
        depends on what else runs."""
        stats = (_stat(path) for path in pathlib.Path("/proc").glob("[0-9]*/stat"))
        return sum(ticks for group, ticks in filter(None, stats) if group == self.process.pid) / _CLOCK_TICKS

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


NGINX_CONF = """\
{user}worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ image/jpeg jpg; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def nginx(root: pathlib.Path, work: pathlib.Path) -> Server:
    """nginx (from apt) serving the files of `root` with a config generated into `work`."""
    port = free_port()
    conf = work / "nginx.conf"
    # Started as root, nginx workers switch to `nobody`, who may not traverse a private temp dir
    # (pytest's are 0700): keep them as the invoking user. They serve two images on loopback.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(user=user, work=work, port=port, root=root))
    argv = ["nginx", "-p", str(work), "-c", str(conf), "-e", str(work / "nginx-error.log")]
    return Server("nginx", argv, port, work / "nginx.log")


def baseline_gunicorn(target: str, work: pathlib.Path) -> Server:
    """The lesson's image command, `gunicorn --bind=0.0.0.0:9696 gateway:app`: gunicorn defaults
    (one sync worker), bound to loopback here."""
    port = free_port()
    argv = [str(VENV_BIN / "gunicorn"), f"--bind=127.0.0.1:{port}", "bench.baseline.gateway:app"]
    return Server(
        "baseline-gunicorn", argv, port, work / "baseline-gunicorn.log", {"TF_SERVING_HOST": target}
    )


def baseline_waitress(
    target: str, threads: int, work: pathlib.Path, name: str = "baseline-waitress"
) -> Server:
    """The lesson's app on the same WSGI server and thread count as ours."""
    port = free_port()
    argv = [
        str(VENV_BIN / "waitress-serve"),
        f"--listen=127.0.0.1:{port}",
        f"--threads={threads}",
        "bench.baseline.gateway:app",
    ]
    return Server(name, argv, port, work / f"{name}.log", {"TF_SERVING_HOST": target})


def web_floor(threads: int, work: pathlib.Path) -> Server:
    """Flask on waitress with the gateway's thread count, parsing the JSON body and answering a
    small JSON (bench/floor_app.py): what any Flask gateway on this server costs per request."""
    port = free_port()
    argv = [
        str(VENV_BIN / "waitress-serve"),
        f"--listen=127.0.0.1:{port}",
        f"--threads={threads}",
        "bench.floor_app:app",
    ]
    return Server("web-floor", argv, port, work / "web-floor.log")


def pipeline_floor(target: str, work: pathlib.Path) -> Server:
    """The gateway's request path in its libraries alone (bench/pipeline_floor.py), in front of
    the uint8 model server `target`."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.pipeline_floor"]
    env = {"TF_SERVING_HOST": target, "PORT": str(port)}
    return Server("pipeline-floor", argv, port, work / "pipeline-floor.log", env)


def ours(
    target: str, threads: int, work: pathlib.Path, name: str = "ours", extra: dict[str, str] | None = None
) -> Server:
    """`python -m gateway`, allowed to fetch the images from loopback (plus `extra` settings)."""
    port = free_port()
    env = {
        "TF_SERVING_HOST": target,
        "PORT": str(port),
        "THREADS": str(threads),
        "FETCH_ALLOWED_NETWORKS": "127.0.0.1/32",
        **(extra or {}),
    }
    return Server(name, [sys.executable, "-m", "gateway"], port, work / f"{name}.log", env)


def check_prediction(gateway: Server, image_url: str, classes: int, timeout: float = 60.0) -> dict:
    """POST one real request; fail loudly unless the gateway answers 200 + `classes` scores, so a
    gateway that answers errors fast can never show up as fast."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            response = requests.post(f"{gateway.url}/predict", json={"url": image_url}, timeout=30)
        except requests.RequestException as exc:
            last = repr(exc)
        else:
            if response.status_code == 200:
                body = response.json()
                if not (
                    isinstance(body, dict)
                    and len(body) == classes
                    and all(isinstance(v, float) for v in body.values())
                ):
                    raise RuntimeError(f"{gateway.name} answered an unexpected body: {body}")
                return body
            last = f"{response.status_code} {response.text[:300]}"
            if response.status_code < 500:
                break
        time.sleep(0.5)
    raise RuntimeError(f"{gateway.name} failed a prediction for {image_url}: {last}")
