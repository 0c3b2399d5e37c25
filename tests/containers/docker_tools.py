"""Docker helpers shared by the container tier's fixtures and tests (no fixtures here)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import time
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / ".run" / "test-logs"
BASE_IMAGE = os.environ.get("KS_BASE_IMAGE", "keras-serving/base:bookworm")
TAG = "ci"  # tag of every image the tier builds: keras-serving/<name>:ci
LABEL = "keras-serving.test"
DEMO_DIR = ROOT / "model" / "demo"
MODEL_NAME = "clothing-model"


def docker(*args: str, check: bool = True, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run the docker CLI; on failure, the error message carries its stderr."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


def convert_model(keras_file: pathlib.Path, base: pathlib.Path, version: int) -> pathlib.Path:
    """`model convert` (the host's .venv has TensorFlow) of `keras_file` with the demo labels into
    `<base>/<MODEL_NAME>/<version>/`, made world-readable so that the containers' non-root users
    can read it through a bind mount or an image COPY."""
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "model"), "convert", str(keras_file),
                           "--labels", str(DEMO_DIR / "labels.txt"), "--out", str(base), "--name", MODEL_NAME,
                           "--version", str(version)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, f"model convert failed:\n{proc.stderr[-4000:]}"
    for path in [base, *base.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return base


def build_model_image(tag: str, loader_image: str, models_base: pathlib.Path, version: int) -> str:
    """A model image (model/Dockerfile.model-image: the loader + one SavedModel version at /model)
    from `<models_base>/<MODEL_NAME>/<version>/`."""
    docker("build", "-f", str(ROOT / "model" / "Dockerfile.model-image"), "-t", tag,
           "--build-arg", f"LOADER_IMAGE={loader_image}", "--build-arg", f"MODEL_DIR={MODEL_NAME}/{version}",
           "--build-arg", f"MODEL_NAME={MODEL_NAME}", "--build-arg", f"MODEL_VERSION={version}",
           str(models_base), timeout=600)  # fmt: skip
    return tag


def image_tag(name: str) -> str:
    return f"keras-serving/{name}:{TAG}"


class ImageBuilder:
    """Builds each image once per session; keeps the build log under .run/test-logs/."""

    def __init__(self, base: str):
        self.base = base
        self.built: dict[str, str] = {}
        self.seconds: dict[str, float] = {}

    def __call__(self, dockerfile: str, tag: str, context: str = ".", build_args: dict | None = None) -> str:
        if tag in self.built:
            return tag
        args = {"BASE_IMAGE": self.base, **(build_args or {})}
        cmd = ["docker", "build", "-f", str(ROOT / dockerfile), "-t", tag]
        for key, value in args.items():
            cmd += ["--build-arg", f"{key}={value}"]
        cmd.append(str(ROOT / context))
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = LOG_DIR / f"build-{tag.replace('/', '_').replace(':', '_')}.log"
        start = time.monotonic()
        with log.open("w") as fh:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=1800, cwd=ROOT)
        self.seconds[tag] = time.monotonic() - start
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
            pytest.fail(f"docker build of {dockerfile} as {tag} failed (full log: {log}):\n{tail}")
        self.built[tag] = tag
        return tag


class Containers:
    """Creates labelled containers and networks and removes them all at the end of a test."""

    def __init__(self):
        self.run_id = uuid.uuid4().hex[:8]
        self.names: list[str] = []
        self.networks: list[str] = []

    def name(self, role: str) -> str:
        return f"ks-{role}-{self.run_id}"

    def network(self) -> str:
        name = f"ks-net-{self.run_id}"
        docker("network", "create", "--label", f"{LABEL}={self.run_id}", name)
        self.networks.append(name)
        return name

    def run(self, image: str, *args: str, role: str, options: tuple[str, ...] = ()) -> str:
        """`docker run -d` with a label and a name; returns the container name."""
        name = self.name(role)
        self.names.append(name)
        docker("run", "-d", "--name", name, "--label", f"{LABEL}={self.run_id}", *options, image, *args)
        return name

    def logs(self) -> str:
        parts = []
        for name in self.names:
            out = docker("logs", "--tail", "80", name, check=False)
            parts.append(f"--- {name} ---\n{out.stdout}{out.stderr}")
        return "\n".join(parts)

    def remove_all(self) -> None:
        ids = docker("ps", "-aq", "--filter", f"label={LABEL}={self.run_id}", check=False).stdout.split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False)
        for net in self.networks:
            docker("network", "rm", net, check=False)


def published_port(container: str, port: int) -> int:
    out = docker("port", container, f"{port}/tcp").stdout.split()[0]
    return int(out.rsplit(":", 1)[1])


def wait_http(url: str, timeout: float = 120, container: str | None = None) -> None:
    """Poll url until it answers 200 (bounded); fail early if the container died."""
    import requests

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            r = requests.get(url, timeout=3)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:200]}"
        except requests.RequestException as exc:
            last = repr(exc)
        if container:
            state = docker("inspect", "-f", "{{.State.Status}}", container, check=False).stdout.strip()
            if state in ("exited", "dead"):
                logs = docker("logs", "--tail", "60", container, check=False)
                raise AssertionError(f"{container} {state}:\n{logs.stdout}{logs.stderr}")
        time.sleep(1)
    raise AssertionError(f"{url} not ready after {timeout} s (last: {last})")


def demo_sample() -> tuple[pathlib.Path, str]:
    """The sample image the demo model's training report names (`demo_image`, one it classifies
    right) and its true class."""
    import json

    report = json.loads((DEMO_DIR / "training-report.json").read_text())
    image = report["demo_image"]
    return ROOT / "samples" / "images" / image, report["samples"][image]["true"]


def predict_base64(gateway_url: str, image: pathlib.Path) -> dict:
    """POST the image as base64 JSON to the gateway; returns the scores object."""
    import base64

    import requests

    body = {"image": base64.b64encode(image.read_bytes()).decode()}
    r = requests.post(f"{gateway_url}/predict", json=body, timeout=60)
    assert r.status_code == 200, r.text
    scores = r.json()
    assert isinstance(scores, dict) and scores, scores
    return scores
