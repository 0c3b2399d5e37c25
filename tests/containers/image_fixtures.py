"""Session fixtures of the image-building tiers (containers, cluster): a Docker engine, the local
base image, the project's images and the demo model as a model image. Imported by the conftest.py
of each tier that needs them (a conftest's fixtures reach only its own folder).

The engine is started by scripts/docker-engine.sh when none answers (and stopped at the end only
if this session started it). Every image is built FROM the mmdebstrap base image
(scripts/base-image.sh), never from Docker Hub.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest
import requests
from docker_tools import (
    BASE_IMAGE,
    DEMO_DIR,
    LOG_DIR,
    ROOT,
    ImageBuilder,
    build_model_image,
    convert_model,
    docker,
    image_tag,
)

from support.net import free_port

__all__ = [
    "docker_engine",
    "base_image",
    "build_image",
    "gateway_image",
    "loader_image",
    "model_server_image",
    "demo_model_base",
    "demo_model_image",
    "local_registry",
    "oci_release",
]


@pytest.fixture(scope="session")
def docker_engine():
    out = subprocess.run(
        [str(ROOT / "scripts" / "docker-engine.sh"), "start"], capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, f"could not start a Docker engine:\n{out.stdout}\n{out.stderr}"
    started_here = out.stdout.strip() == "started"
    yield
    if started_here:
        subprocess.run([str(ROOT / "scripts" / "docker-engine.sh"), "stop"], timeout=180, check=False)


@pytest.fixture(scope="session")
def base_image(docker_engine) -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "base-image.sh"), BASE_IMAGE], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, f"base image build failed:\n{out.stderr[-4000:]}"
    return BASE_IMAGE


@pytest.fixture(scope="session")
def build_image(base_image) -> ImageBuilder:
    return ImageBuilder(base_image)


@pytest.fixture(scope="session")
def gateway_image(build_image) -> str:
    return build_image("gateway/Dockerfile", image_tag("gateway"), "gateway")


@pytest.fixture(scope="session")
def loader_image(build_image) -> str:
    return build_image("model/Dockerfile.loader", image_tag("model-loader"), "model")


@pytest.fixture(scope="session")
def model_server_image(build_image) -> str:
    return build_image("model/Dockerfile.serve", image_tag("model-server-dev"), "model")


# ---- the demo model, converted on the host (the model tooling in .venv has TensorFlow) ----------
@pytest.fixture(scope="session")
def demo_model_base(tmp_path_factory) -> pathlib.Path:
    """<base>/clothing-model/1/ converted from the bundled demo model; world-readable so that the
    containers' non-root users can read it through a bind mount."""
    return convert_model(DEMO_DIR / "clothing-model.keras", tmp_path_factory.mktemp("models"), 1)


@pytest.fixture(scope="session")
def demo_model_image(build_image, loader_image, demo_model_base) -> str:
    """The demo model as a model image (model/Dockerfile.model-image: the loader + /model)."""
    return build_model_image(image_tag("clothing-model"), loader_image, demo_model_base, 1)


# ---- a real OCI registry and `make release` against it -----------------------------------------
@pytest.fixture(scope="session")
def local_registry(tmp_path_factory) -> str:
    """distribution's registry (built by make tools) on a free loopback port, with the project's
    config (scripts/release/registry.yml) and empty storage; yields host:port."""
    binary = shutil.which("registry")
    assert binary, "the registry binary is not on PATH: run `make tools`"
    address = f"127.0.0.1:{free_port()}"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = open(LOG_DIR / "registry.log", "wb")
    env = {
        **os.environ,
        "REGISTRY_HTTP_ADDR": address,
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(tmp_path_factory.mktemp("registry")),
    }
    process = subprocess.Popen(
        [binary, "serve", str(ROOT / "scripts" / "release" / "registry.yml")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, f"registry exited: {(LOG_DIR / 'registry.log').read_text()[-2000:]}"
        try:
            if requests.get(f"http://{address}/v2/", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "registry did not answer within 30 s"
        time.sleep(0.1)
    yield address
    process.terminate()
    process.wait(10)
    log.close()


class Release:
    """What one `make release` printed and wrote (release.json), and where its key is."""

    def __init__(self, registry: str, out: pathlib.Path, key: pathlib.Path, stdout: str, seconds: float):
        self.registry = registry
        self.out = out
        self.key = key
        self.public_key = key.with_suffix(".pub")
        self.stdout = stdout
        self.seconds = seconds
        self.manifest = json.loads((out / "release.json").read_text())
        self.prefix = self.manifest["registry"]

    def pinned(self, name: str) -> str:
        return f"{self.prefix}/{name}@{self.manifest['images'][name]['digest']}"

    @property
    def chart(self) -> str:
        return self.manifest["chart"]["ref"]

    @property
    def version(self) -> str:
        return self.manifest["chart"]["version"]

    def install_command(self) -> list[str]:
        """The `helm install` line make release printed, as words."""
        line = next(out for out in self.stdout.splitlines() if out.strip().startswith("helm install "))
        return line.split()


@pytest.fixture(scope="session")
def oci_release(
    local_registry, gateway_image, loader_image, model_server_image, base_image, tmp_path_factory
) -> Release:
    """`make release` against the local registry, signed with a key pair made for this session.
    The tier's own image fixtures ran first, so the release's docker builds are cache hits."""
    work = tmp_path_factory.mktemp("release")
    key = work / "keys" / "cosign.key"
    env = {
        **os.environ,
        "COSIGN_KEY": str(key),
        "COSIGN_PASSWORD": "",
        "OUT": str(work / "out"),
        "BASE_IMAGE": base_image,
    }
    started = time.monotonic()
    proc = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "release",
            f"REGISTRY={local_registry}",
            "OWNER=keras-serving",
            "SIGN=key",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, f"make release failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    yield Release(local_registry, work / "out", key, proc.stdout, time.monotonic() - started)
    # The registry is gone after the session: drop the engine's names for it (layers stay cached
    # under the project's own names).
    names = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    ours = [n for n in names if n.startswith(f"{local_registry}/") and not n.endswith(":<none>")]
    if ours:
        docker("rmi", *ours, check=False)
