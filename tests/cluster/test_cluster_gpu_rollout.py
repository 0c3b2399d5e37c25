"""A version bump on a one-GPU pool finishes. The node advertises one `nvidia.com/gpu` (an
extended resource, the way Kubernetes documents advertising one; no device is behind it, and the
model server runs its CPU image): the chart's GPU default replaces the pod in place, while the
old surge strategy leaves the new pod Pending for a second GPU."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kube import CLUSTER_ENV, VALUES, wait_until

RELEASE = "gpu"
GPU = "nvidia.com/gpu"


@pytest.fixture
def one_gpu_node(cluster):
    if not cluster.local:
        pytest.skip("advertises a fake GPU on the node: make cluster-up's cluster only")
    node = CLUSTER_ENV["KS_NODE_NAME"]
    path = "/status/capacity/" + GPU.replace("/", "~1")
    cluster.kubectl(
        "patch",
        "node",
        node,
        "--subresource=status",
        "--type=json",
        "-p",
        json.dumps([{"op": "add", "path": path, "value": "1"}]),
    )
    wait_until(
        "the node to offer one GPU",
        lambda: cluster.get("node", node)["status"].get("allocatable", {}).get(GPU) == "1",
        60,
        1,
    )
    yield
    cluster.kubectl(
        "patch",
        "node",
        node,
        "--subresource=status",
        "--type=json",
        "-p",
        json.dumps([{"op": "remove", "path": path}]),
        check=False,
    )


def test_gpu_version_bump_finishes_on_one_gpu_and_a_surge_would_not(
    cluster, cluster_images, one_gpu_node, report
):
    namespace = f"ks-gpu-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    section = "GPU rollout on a one-GPU node"
    try:
        helm = ["-n", namespace]
        cluster.helm(
            "install",
            RELEASE,
            ".",
            *helm,
            "-f",
            str(VALUES),
            "--set",
            "ingress.enabled=false",
            "--set",
            "modelServer.gpu.enabled=true",
            "--set",
            "modelServer.gpu.count=1",
            "--set",
            "modelServer.image.tag=ci",
            "--wait",
            "--timeout",
            "5m",
            timeout=600,
        )
        deployment = f"{RELEASE}-model-server"
        strategy = cluster.get("deployment", deployment, namespace=namespace)["spec"]["strategy"][
            "rollingUpdate"
        ]
        assert (strategy["maxSurge"], strategy["maxUnavailable"]) == (0, 1)
        started = time.monotonic()
        cluster.helm(
            "upgrade",
            RELEASE,
            ".",
            *helm,
            "--reuse-values",
            "--set",
            "global.model.version=2",
            "--wait",
            "--timeout",
            "5m",
            timeout=600,
        )
        report.figure(
            section,
            "helm upgrade to version 2 (maxSurge 0, the chart's GPU default)",
            f"finished in {time.monotonic() - started:.0f} s",
        )

        # The strategy the chart had before: a surge pod that needs a second GPU.
        cluster.helm(
            "upgrade",
            RELEASE,
            ".",
            *helm,
            "--reuse-values",
            "--set",
            "global.model.version=1",
            "--set",
            "modelServer.rollingUpdate.maxSurge=1",
            "--set",
            "modelServer.rollingUpdate.maxUnavailable=0",
            timeout=600,
        )

        def unschedulable():
            for pod in cluster.pods(
                namespace, f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=model-server"
            ):
                for condition in pod["status"].get("conditions", []):
                    if condition["type"] == "PodScheduled" and condition["status"] == "False":
                        return condition.get("message", "")
            return None

        message = wait_until("the surge pod to wait for a GPU", unschedulable, 60, 1)
        assert "Insufficient nvidia.com/gpu" in message, message
        report.figure(
            section, "the same bump with maxSurge 1 (the chart's old default)", f"Pending: {message[:80]}"
        )
    finally:
        cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait", check=False)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
