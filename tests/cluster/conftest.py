"""Cluster tier fixtures: a live cluster, the project's images on it, the report.

By default the cluster is make cluster-up's single-node cluster: started here when it is not
running (and stopped again at the end of the session in that case), with the images the
container tier builds imported into its containerd. KS_CLUSTER=current runs the same checks
against kubectl's current context instead; then KS_INGRESS_ADDRESS (host:port of its Ingress
controller), KS_INGRESS_CLASS and KS_CLUSTER_VALUES (a values file naming images the cluster can
pull, versions 1 and 2 of the model image) say what this tier cannot build there.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "containers"))  # docker_tools, image_fixtures

from docker_tools import DEMO_DIR, MODEL_NAME, build_model_image, convert_model  # noqa: E402
from image_fixtures import *  # noqa: E402,F401,F403
from kube import CLUSTER_ENV, ROOT, Cluster, read_env_file  # noqa: E402
from models import HALVE_LOGITS  # noqa: E402
from report import Report  # noqa: E402

CLUSTER_SCRIPTS = ROOT / "scripts" / "cluster"
SAMPLE = DEMO_DIR.parent.parent / "samples" / "images"


def _script(name: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLUSTER_SCRIPTS / name)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def report() -> Report:
    report = Report(ROOT / "docs" / "cluster-test.md")
    yield report
    report.write()


@pytest.fixture(scope="session")
def cluster(report) -> Cluster:
    if os.environ.get("KS_CLUSTER", "local") == "current":
        address = os.environ.get("KS_INGRESS_ADDRESS")
        assert address, "KS_CLUSTER=current needs KS_INGRESS_ADDRESS=<host:port of the Ingress controller>"
        yield Cluster(
            kubeconfig=os.environ.get("KUBECONFIG", str(pathlib.Path.home() / ".kube" / "config")),
            ingress_address=address,
            ingress_class=os.environ.get("KS_INGRESS_CLASS", "nginx"),
            local=False,
        )
        return
    running = _script("status.sh", 30).returncode == 0
    if not running:
        up = _script("up.sh", 3600)  # a cold build of every binary takes ~10 min on 2 cores
        assert up.returncode == 0, f"make cluster-up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
    kubeconfig = _script("status.sh", 30).stdout.strip()
    state = pathlib.Path(kubeconfig).parent
    report.cluster_timings(read_env_file(state / "timings.env"), started_here=not running)
    probe = Cluster(
        kubeconfig=kubeconfig, ingress_address="", ingress_class=CLUSTER_ENV["KS_INGRESS_CLASS"], local=True
    )
    node_ip = probe.kubectl(
        "get",
        "node",
        CLUSTER_ENV["KS_NODE_NAME"],
        "-o",
        "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}",
    ).stdout.strip()
    probe.ingress_address = f"{node_ip}:{CLUSTER_ENV['KS_INGRESS_HTTP_PORT']}"
    report.cluster_versions(probe)
    yield probe
    if not running:
        # Stop what this session started; on the way, measure a warm start (builds cached) and
        # check that down leaves nothing behind each time.
        for step in ("down", "warm up", "down again"):
            started = time.monotonic()
            proc = _script("up.sh" if step == "warm up" else "down.sh", 900)
            assert proc.returncode == 0, f"{step} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            report.figure(
                "cluster",
                f"make cluster-{'up' if step == 'warm up' else 'down'} ({step})",
                f"{time.monotonic() - started:.0f} s" + (", nothing left behind" if "down" in step else ""),
            )


@pytest.fixture(scope="session")
def model_versions(build_image, loader_image, demo_model_base, tmp_path_factory) -> dict[int, str]:
    """Model images of versions 1 (the demo model) and 2 (models.HALVE_LOGITS), each tagged
    with its version as the chart's default tag."""
    base = tmp_path_factory.mktemp("cluster-models")
    v2_keras = base / "clothing-model-v2.keras"
    python = str(ROOT / ".venv" / "bin" / "python")
    proc = subprocess.run(
        [python, "-c", HALVE_LOGITS, str(DEMO_DIR / "clothing-model.keras"), str(v2_keras)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    convert_model(v2_keras, base, 2)
    tags = {}
    for version, context in ((1, demo_model_base), (2, base)):
        tag = build_model_image(f"keras-serving/{MODEL_NAME}:{version}", loader_image, context, version)
        tags[version] = tag
    return tags


@pytest.fixture(scope="session")
def cluster_images(cluster, gateway_image, loader_image, model_server_image, model_versions, report) -> None:
    """The images the release runs, in the node's containerd (the chart sets pullPolicy Never)."""
    if not cluster.local:
        return
    started = time.monotonic()
    images = [gateway_image, loader_image, model_server_image, *model_versions.values()]
    state = pathlib.Path(cluster.kubeconfig).parent
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
    load = subprocess.run(
        [
            "ctr",
            "--address",
            str(state / "containerd" / "containerd.sock"),
            "--namespace",
            "k8s.io",
            "images",
            "import",
            "-",
        ],
        stdin=save.stdout,
        capture_output=True,
        text=True,
        timeout=900,
    )
    save.stdout.close()
    assert save.wait(timeout=60) == 0 and load.returncode == 0, load.stderr[-3000:]
    report.figure("images", "import into the node's containerd", f"{time.monotonic() - started:.0f} s")


@pytest.fixture(scope="session")
def sample_image() -> tuple[bytes, str]:
    """The demo's sample photo and its true class (the training report's `demo_image`)."""
    import json

    report = json.loads((DEMO_DIR / "training-report.json").read_text())
    name = report["demo_image"]
    return (SAMPLE / name).read_bytes(), report["samples"][name]["true"]


def pytest_collection_modifyitems(items):
    # Rollouts under load, HPA windows and drains take minutes: a wider per-test bound.
    for item in items:
        if HERE in pathlib.Path(str(item.path)).parents and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(3600))
