"""Each image the project ships builds from its Dockerfile on the local base image and behaves:
non-root, the right things importable (and TensorFlow not, where it must not be), a working
entry point. Sizes are written to docs/image-sizes.md."""

from __future__ import annotations

import datetime
import http.server
import io
import json
import tarfile
import threading

import pytest
import requests
from docker_tools import BASE_IMAGE, MODEL_NAME, ROOT, docker, published_port, wait_http

SIZES_DOC = ROOT / "docs" / "image-sizes.md"
_sizes: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def write_image_sizes():
    yield
    if not _sizes:
        return
    # Keep the figures of images this run did not build (a run of a single test, -k ...).
    sizes = {}
    if SIZES_DOC.exists():
        for row in SIZES_DOC.read_text().splitlines():
            cells = [c.strip(" `") for c in row.strip("|").split("|")]
            if len(cells) == 2 and cells[1].isdigit():
                sizes[cells[0]] = int(cells[1]) * 10**6
    sizes.update(_sizes)
    lines = [
        "# Image sizes",
        "",
        f"Written by `tests/containers/test_images.py` on {datetime.date.today().isoformat()}: images built",
        f"from the repo's Dockerfiles on the local base image `{BASE_IMAGE}` (Debian bookworm",
        "minbase + python3), as `docker image inspect` reports them (uncompressed).",
        "",
        "| image | size (MB) |",
        "| --- | ---: |",
    ]
    lines += [f"| `{tag}` | {size / 1e6:.0f} |" for tag, size in sorted(sizes.items())]
    SIZES_DOC.write_text("\n".join(lines) + "\n")


def record_size(tag: str) -> int:
    size = int(docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)
    _sizes[tag] = size
    print(f"{tag}: {size / 1e6:.0f} MB")
    return size


def assert_non_root(tag: str) -> None:
    user = docker("image", "inspect", "-f", "{{.Config.User}}", tag).stdout.strip()
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"{tag} must declare a numeric non-root USER, has {user!r}"
    # Python, not `id`: the gateway image has no coreutils beyond `sleep`.
    seen = docker(
        "run", "--rm", "--entrypoint", "python3", tag, "-c", "import os; print(os.getuid())"
    ).stdout.strip()
    assert seen == uid, f"{tag} runs as uid {seen}, image declares {uid}"


def python_in(tag: str, code: str, check: bool = True):
    # The image's own interpreter: whatever `python3` its PATH finds first (its venv).
    return docker("run", "--rm", "--entrypoint", "python3", tag, "-c", code, check=check)


def assert_no_tensorflow(tag: str) -> None:
    # `import tensorflow` alone proves nothing: tensorflow-protobuf (the gateway's TF Serving
    # protos) installs a `tensorflow` package holding only protos. Real TensorFlow is a
    # distribution named tensorflow* with a `tensorflow.python` package.
    code = (
        "import importlib.metadata as md, importlib.util as iu\n"
        "names = sorted(d.metadata['Name'].lower() for d in md.distributions())\n"
        "bad = [n for n in names if n in ('tensorflow', 'tensorflow-cpu', 'tensorflow-gpu', 'keras', 'tf-keras')]\n"
        "assert not bad, bad\n"
        "try:\n    spec = iu.find_spec('tensorflow.python')\nexcept ModuleNotFoundError:\n    spec = None\n"
        "assert spec is None, spec\n"
    )
    proc = python_in(tag, code, check=False)
    assert proc.returncode == 0, proc.stderr[-800:]


# ---- gateway ------------------------------------------------------------------------------------
def test_gateway_image_is_non_root_small_and_without_tensorflow(gateway_image):
    assert_non_root(gateway_image)
    assert_no_tensorflow(gateway_image)
    python_in(
        gateway_image,
        "import gateway.app, gateway.selftest, tensorflow_serving.apis.prediction_service_pb2_grpc\n"
        # aiohttp's C HTTP parser and multidict's C extension, not their pure-Python fallbacks
        "from aiohttp import http_parser\n"
        "assert http_parser.HttpRequestParser is http_parser.HttpRequestParserC\n"
        "import multidict._multidict\n"
        # every decoder the gateway accepts survived rootfs.sh's trimming of unused libraries
        "from PIL import features\n"
        "assert all(features.check(f) for f in ('jpg', 'zlib', 'webp', 'avif')), features.pilinfo()\n",
    )
    assert record_size(gateway_image) < 150e6


def test_gateway_image_has_no_shell_or_package_tools_but_keeps_the_prestop_sleep(gateway_image):
    """FROM scratch + gateway/docker/rootfs.sh: nothing to install or run besides the gateway and
    the `sleep` the chart's preStop hook executes."""
    for tool in ("sh", "bash", "apt-get", "dpkg", "pip"):
        proc = docker("run", "--rm", "--entrypoint", tool, gateway_image, "--version", check=False)
        assert proc.returncode != 0 and "executable file not found" in proc.stderr, (tool, proc.stderr)
    assert docker("run", "--rm", "--entrypoint", "sleep", gateway_image, "0.1", check=False).returncode == 0


def test_gateway_answers_healthz_on_a_read_only_root_filesystem(gateway_image, containers):
    # No model server behind it: liveness must not depend on one, readiness must say not ready.
    name = containers.run(
        gateway_image,
        role="gateway",
        options=(
            "--read-only",
            "--tmpfs",
            "/tmp",
            "-p",
            "127.0.0.1::9696",
            "-e",
            "TF_SERVING_HOST=127.0.0.1:1",
        ),
    )
    port = published_port(name, 9696)
    wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60, container=name)
    ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert ready.status_code == 503, ready.text
    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert metrics.status_code == 200 and "# TYPE" in metrics.text


# ---- model loader -------------------------------------------------------------------------------
def test_loader_image_is_non_root_and_without_tensorflow(loader_image):
    assert_non_root(loader_image)
    assert_no_tensorflow(loader_image)
    record_size(loader_image)


def _version_archive(version_dir) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(version_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return buf.getvalue()


@pytest.fixture
def archive_server(demo_model_base):
    """A host HTTP server on loopback serving the demo version as a .tar.gz (the fetch contract)."""
    import hashlib

    body = _version_archive(demo_model_base / MODEL_NAME / "1")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/model.tar.gz" else 404)
            self.send_header("Content-Length", str(len(body) if self.path == "/model.tar.gz" else 0))
            self.end_headers()
            if self.path == "/model.tar.gz":
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/model.tar.gz", hashlib.sha256(body).hexdigest()
    server.shutdown()
    server.server_close()


def _writable_dir(tmp_path):
    dest = tmp_path / "models"
    dest.mkdir()
    dest.chmod(0o777)  # the loader runs as a non-root uid the host does not know
    return dest


def test_loader_fetch_verifies_the_checksum_and_unpacks_the_version(
    loader_image, archive_server, tmp_path, demo_model_base
):
    url, sha256 = archive_server
    dest = _writable_dir(tmp_path)
    run = ("run", "--rm", "--network", "host", "-v", f"{dest}:/models", loader_image, "fetch", "--url", url)
    bad = docker(*run, "--sha256", "0" * 64, "--dest", f"/models/{MODEL_NAME}/1", check=False)
    assert bad.returncode != 0
    assert not (dest / MODEL_NAME / "1").exists(), "a failed fetch must leave nothing at the destination"

    docker(*run, "--sha256", sha256, "--dest", f"/models/{MODEL_NAME}/1")
    got = dest / MODEL_NAME / "1"
    assert (got / "saved_model.pb").read_bytes() == (
        demo_model_base / MODEL_NAME / "1" / "saved_model.pb"
    ).read_bytes()
    assert (got / "assets.extra" / "labels.txt").read_text().split() == (
        ROOT / "model" / "demo" / "labels.txt"
    ).read_text().split()


def test_model_image_copies_its_savedmodel_into_the_volume(demo_model_image, tmp_path, demo_model_base):
    assert_non_root(demo_model_image)
    record_size(demo_model_image)
    dest = _writable_dir(tmp_path)
    docker("run", "--rm", "-v", f"{dest}:/models", demo_model_image)
    got = dest / MODEL_NAME / "1"
    expected = sorted(
        p.relative_to(demo_model_base / MODEL_NAME / "1").as_posix()
        for p in (demo_model_base / MODEL_NAME / "1").rglob("*")
    )
    assert sorted(p.relative_to(got).as_posix() for p in got.rglob("*")) == expected


# ---- development model server -------------------------------------------------------------------
def test_model_server_dev_image_serves_the_model_over_rest(model_server_image, demo_model_base, containers):
    assert_non_root(model_server_image)
    record_size(model_server_image)
    # The chart's command: the image must answer to TF Serving's executable name and flags.
    name = containers.run(
        model_server_image,
        "tensorflow_model_server",
        "--port=8500",
        "--rest_api_port=8501",
        f"--model_name={MODEL_NAME}",
        f"--model_base_path=/models/{MODEL_NAME}",
        role="model-server",
        options=("-v", f"{demo_model_base}:/models:ro", "-p", "127.0.0.1::8501", "--entrypoint", ""),
    )
    port = published_port(name, 8501)
    wait_http(f"http://127.0.0.1:{port}/v1/models/{MODEL_NAME}", timeout=180, container=name)
    status = requests.get(f"http://127.0.0.1:{port}/v1/models/{MODEL_NAME}", timeout=10).json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE", json.dumps(status)
