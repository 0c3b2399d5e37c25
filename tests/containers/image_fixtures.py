"""Session fixtures of the image-building tiers (containers, cluster): a Docker engine, the local
base image, the project's images and the demo model as a model image. Imported by the conftest.py
of each tier that needs them (a conftest's fixtures reach only its own folder).

The engine is started by scripts/docker-engine.sh when none answers (and stopped at the end only
if this session started it). Every image is built FROM the mmdebstrap base image
(scripts/base-image.sh), never from Docker Hub.
"""
from __future__ import annotations

import subprocess

import pytest
from docker_tools import BASE_IMAGE, DEMO_DIR, MODEL_NAME, ROOT, ImageBuilder, docker, image_tag

__all__ = ["docker_engine", "base_image", "build_image", "gateway_image", "loader_image",
           "model_server_image", "demo_model_base", "demo_model_image"]


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
    base = tmp_path_factory.mktemp("models")
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "model"), "convert", str(DEMO_DIR / "clothing-model.keras"),
         "--labels", str(DEMO_DIR / "labels.txt"), "--out", str(base), "--name", MODEL_NAME, "--version", "1"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"model convert failed:\n{proc.stderr[-4000:]}"
    for path in [base, *base.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return base


@pytest.fixture(scope="session")
def demo_model_image(build_image, loader_image, demo_model_base) -> str:
    """The demo model as a model image (model/Dockerfile.model-image: the loader + /model)."""
    tag = image_tag("clothing-model")
    proc = docker("build", "-f", str(ROOT / "model" / "Dockerfile.model-image"), "-t", tag,
                  "--build-arg", f"LOADER_IMAGE={loader_image}", "--build-arg", f"MODEL_DIR={MODEL_NAME}/1",
                  "--build-arg", f"MODEL_NAME={MODEL_NAME}", "--build-arg", "MODEL_VERSION=1",
                  str(demo_model_base), timeout=600)
    assert proc.returncode == 0
    return tag
