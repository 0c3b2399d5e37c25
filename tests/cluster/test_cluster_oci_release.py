"""The released chart on the live cluster, as a user installs it: `helm install oci://...` from the
registry `make release` pushed to, every keras-serving image pulled by the kubelet from that
registry by digest (none of them is in the node's containerd beforehand), ready, `helm test`
green."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from kube import ROOT, VALUES, ready, release_namespace

RELEASE = "published"


@pytest.fixture
def namespace(cluster):
    with release_namespace(cluster, "ks-oci", RELEASE) as name:
        yield name


def _values_without_images(tmp_path) -> str:
    """The tier's values (small requests, the cluster's Ingress) minus what points at the locally
    imported images: the released chart brings its own registry and digests."""
    values = yaml.safe_load(VALUES.read_text())
    values["global"].pop("imageRegistry")
    values["global"].pop("loaderImage")
    values["global"]["model"]["source"].pop("image")
    values["gateway"].pop("image")
    values["modelServer"].pop("image")
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_released_chart_installs_from_the_registry_with_images_the_kubelet_pulls(
    cluster, oci_release, namespace, tmp_path, report
):
    if not cluster.local:
        pytest.skip("KS_CLUSTER=current: the local registry is on this machine's loopback, not the cluster's")
    trust = subprocess.run(
        [str(ROOT / "scripts" / "cluster" / "trust-registry.sh"), oci_release.registry],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert trust.returncode == 0, trust.stderr
    pinned = {name: oci_release.pinned(name) for name in ("gateway", "clothing-model", "model-server-dev")}
    # The TF-Serving-compatible server of the release stands in for tensorflow/serving (no Docker
    # Hub here): the chart's own value for another model server image, pinned the same way.
    install = cluster.helm(
        "install",
        RELEASE,
        oci_release.chart,
        "--version",
        oci_release.version,
        "--plain-http",
        "-n",
        namespace,
        "-f",
        _values_without_images(tmp_path),
        "--set",
        f"ingress.className={cluster.ingress_class}",
        "--set",
        "ingress.hosts[0]=oci.keras-serving.test",
        "--set",
        f"modelServer.image.repository={oci_release.prefix}/model-server-dev",
        "--set",
        f"modelServer.image.digest={oci_release.manifest['images']['model-server-dev']['digest']}",
        "--wait",
        "--timeout",
        "8m",
        timeout=600,
    )
    assert install.returncode == 0

    pods = cluster.pods(namespace, f"app.kubernetes.io/instance={RELEASE}")
    assert pods and all(ready(p) for p in pods), [p["metadata"]["name"] for p in pods]
    running = {
        c["image"] for p in pods for c in p["spec"].get("initContainers", []) + p["spec"]["containers"]
    }
    assert set(pinned.values()) <= running, running
    # The kubelet pulled each one from the registry: a "Pulled" event that says it fetched the image.
    # Only the first pod to need an image pulls it: a second replica on the node that starts after
    # that pull finished reports it "already present on machine" (seen with the gateway's two
    # replicas when its pull took 60 ms), so one fetch per image is what proves the registry served it.
    events = cluster.get("events", namespace=namespace)["items"]
    pulled = {e["message"] for e in events if e["reason"] == "Pulled"}
    for name, ref in pinned.items():
        assert any("Successfully pulled" in m and ref in m for m in pulled), (name, sorted(pulled))

    out = cluster.helm("test", RELEASE, "-n", namespace, "--timeout", "5m").stdout
    assert "Phase:          Succeeded" in out, out
    report.figure(
        "release",
        "helm install oci:// (images pulled by the kubelet from the release registry)",
        f"{len(pinned)} images by digest, every pod Ready, helm test passed",
    )
