"""The three ways a model reaches the model server, live: a download checked by its sha256 (and
a wrong checksum that leaves the pod failing with a clear message and nothing served), an
existing claim bound to a volume on the node, a claim the chart creates through the cluster's
dynamic provisioner. (The model image source is what test_cluster_release.py runs.)"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import shutil
import tarfile
import threading
import time

import pytest
import requests
from docker_tools import MODEL_NAME
from kube import CLUSTER_ENV, VALUES, ready, release_namespace, wait_until

RELEASE = "source"
HOST = "source.keras-serving.test"


@pytest.fixture
def namespace(cluster):
    with release_namespace(cluster, "ks-src", RELEASE) as name:
        yield name


def _install(cluster, namespace: str, *sets: str, wait: bool = True) -> None:
    args = [
        "install",
        RELEASE,
        ".",
        "-n",
        namespace,
        "-f",
        str(VALUES),
        "--set",
        f"ingress.className={cluster.ingress_class}",
        "--set",
        f"ingress.hosts[0]={HOST}",
    ]
    for item in sets:
        args += ["--set", item]
    if wait:
        args += ["--wait", "--timeout", "5m"]
    cluster.helm(*args, timeout=600)


def _predict(cluster, image: bytes) -> requests.Response:
    url = f"http://{cluster.ingress_address}/predict"
    # The Ingress controller picks a new Ingress up a moment after it exists (404 until then).
    wait_until(
        "the Ingress route to the gateway",
        lambda: requests.get(url, headers={"Host": HOST}, timeout=10).status_code != 404,
        60,
        1,
    )
    return requests.post(
        url, headers={"Host": HOST}, files={"image": ("sample.jpg", image, "image/jpeg")}, timeout=30
    )


def _model_server_pod(cluster, namespace: str) -> dict:
    pods = cluster.pods(
        namespace, f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=model-server"
    )
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


@contextlib.contextmanager
def _archive_server(address: str, body: bytes):
    """An HTTP server on the node's address (the pods reach it) serving one archive."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((address, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{server.server_address[1]}/{MODEL_NAME}-1.tar.gz"
    finally:
        server.shutdown()
        server.server_close()


def _version_archive(version_dir) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(version_dir.rglob("*")):
            tar.add(path, arcname=path.relative_to(version_dir).as_posix(), recursive=False)
    return buf.getvalue()


def test_url_source_downloads_checks_and_serves(
    cluster, cluster_images, namespace, demo_model_base, sample_image, report
):
    body = _version_archive(demo_model_base / MODEL_NAME / "1")
    node_ip = cluster.ingress_address.rsplit(":", 1)[0]
    with _archive_server(node_ip, body) as url:
        started = time.monotonic()
        _install(
            cluster,
            namespace,
            "global.model.source.type=url",
            f"global.model.source.url.url={url}",
            f"global.model.source.url.sha256={hashlib.sha256(body).hexdigest()}",
        )
        report.figure(
            "model sources",
            "url: download, sha256 check, Ready",
            f"{time.monotonic() - started:.0f} s ({len(body) // 1024} KiB archive)",
        )
    image, true_class = sample_image
    response = _predict(cluster, image)
    assert response.status_code == 200 and max(response.json(), key=response.json().get) == true_class


def test_url_source_with_a_wrong_checksum_serves_nothing_and_says_why(
    cluster, cluster_images, namespace, demo_model_base, report
):
    body = _version_archive(demo_model_base / MODEL_NAME / "1")
    node_ip = cluster.ingress_address.rsplit(":", 1)[0]
    with _archive_server(node_ip, body) as url:
        _install(
            cluster,
            namespace,
            "global.model.source.type=url",
            f"global.model.source.url.url={url}",
            f"global.model.source.url.sha256={'0' * 64}",
            wait=False,
        )

        def failure_message():
            pod = _model_server_pod(cluster, namespace)
            for status in pod["status"].get("initContainerStatuses", []):
                terminated = status.get("lastState", {}).get("terminated") or status["state"].get(
                    "terminated"
                )
                if terminated and terminated.get("exitCode", 0) != 0:
                    return terminated.get("message") or "(no message)"
            return None

        # The loader's error is the pod's own status (terminationMessagePolicy FallbackToLogsOnError):
        # what `kubectl describe pod` shows a user.
        logs = wait_until("the model loader to fail", failure_message, 180, 2)
    assert "checksum mismatch" in logs and "left untouched" in logs, logs
    assert not ready(_model_server_pod(cluster, namespace))
    deployment = cluster.get("deployment", f"{RELEASE}-model-server", namespace=namespace)
    assert not deployment["status"].get("availableReplicas")
    report.figure(
        "model sources",
        "url with a wrong sha256",
        "init container fails: " + logs.strip().splitlines()[-1][:120],
    )


def test_existing_claim_on_a_node_volume_is_served(
    cluster, cluster_images, namespace, demo_model_base, sample_image, report, tmp_path_factory
):
    if not cluster.local:
        pytest.skip("needs a volume on the node: make cluster-up's cluster only")
    store = tmp_path_factory.mktemp("model-store")
    shutil.copytree(demo_model_base / MODEL_NAME / "1", store / MODEL_NAME / "1")
    for path in [store, *store.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    pv = f"{namespace}-models"
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=f"""
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {pv}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadOnlyMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: {{path: "{store}", type: Directory}}
  claimRef: {{namespace: {namespace}, name: model-store}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: model-store, namespace: {namespace}}}
spec:
  accessModes: [ReadOnlyMany]
  storageClassName: ""
  volumeName: {pv}
  resources: {{requests: {{storage: 1Gi}}}}
""",
    )
    try:
        started = time.monotonic()
        _install(
            cluster,
            namespace,
            "global.model.source.type=pvc",
            "global.model.source.pvc.existingClaim=model-store",
            "modelServer.replicaCount=2",
        )
        report.figure(
            "model sources",
            "existing claim (ReadOnlyMany, 2 model servers): Ready",
            f"{time.monotonic() - started:.0f} s",
        )
        image, true_class = sample_image
        response = _predict(cluster, image)
        assert response.status_code == 200 and max(response.json(), key=response.json().get) == true_class
    finally:
        cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait", check=False)
        cluster.kubectl("delete", "pvc", "model-store", "-n", namespace, "--wait=false", check=False)
        cluster.kubectl("delete", "pv", pv, "--wait=false", check=False)


def test_chart_created_claim_is_provisioned_filled_served_and_kept(
    cluster, cluster_images, namespace, demo_model_base, sample_image, report
):
    if not cluster.local:
        pytest.skip("fills the provisioned directory on the node: make cluster-up's cluster only")
    storage_class = CLUSTER_ENV["KS_STORAGE_CLASS"]
    _install(
        cluster,
        namespace,
        "global.model.source.type=pvc",
        f"global.model.source.pvc.storageClassName={storage_class}",
        wait=False,
    )
    claim = f"{RELEASE}-model-server-models"
    pv = wait_until(
        "the chart's claim to be bound by the provisioner",
        lambda: cluster.get("pvc", claim, namespace=namespace)["spec"].get("volumeName"),
        120,
        2,
    )
    volume = cluster.get("pv", pv)
    path = (volume["spec"].get("hostPath") or volume["spec"].get("local"))["path"]
    # What a user does with a new claim: put <name>/<version>/ on it, then restart the server.
    import pathlib

    target = pathlib.Path(path) / MODEL_NAME / "1"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(demo_model_base / MODEL_NAME / "1", target)
    for item in [pathlib.Path(path), *pathlib.Path(path).rglob("*")]:
        item.chmod(0o755 if item.is_dir() else 0o644)
    cluster.kubectl(
        "delete", "pod", "-n", namespace, "-l", "app.kubernetes.io/component=model-server", "--wait=false"
    )
    cluster.kubectl(
        "rollout",
        "status",
        f"deployment/{RELEASE}-model-server",
        "-n",
        namespace,
        "--timeout=5m",
        timeout=400,
    )
    wait_until(
        "a ready gateway",
        lambda: all(
            ready(p)
            for p in cluster.pods(
                namespace, f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=gateway"
            )
        ),
        120,
        2,
    )
    image, true_class = sample_image
    response = _predict(cluster, image)
    assert response.status_code == 200 and max(response.json(), key=response.json().get) == true_class
    report.figure(
        "model sources",
        f"chart-created claim ({storage_class} provisioner)",
        f"bound to {pv}, filled, served; kept after uninstall",
    )
    cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait")
    assert (
        cluster.get("pvc", claim, namespace=namespace)["status"]["phase"] == "Bound"
    )  # helm.sh/resource-policy: keep
    cluster.kubectl("delete", "pvc", claim, "-n", namespace)
    wait_until(
        "the provisioner to delete the volume",
        lambda: cluster.kubectl("get", "pv", pv, check=False).returncode != 0,
        120,
        2,
    )
