"""The chart's NetworkPolicies, enforced (kube-router's firewall on make cluster-up's cluster):
the gateway reaches the model server's gRPC port; a pod the policies do not name cannot reach it
(nor the REST/metrics port), while the gateway's own port stays open to any client."""

from __future__ import annotations

import uuid

import pytest
from kube import VALUES, ready, release_namespace, wait_until

RELEASE = "netpol"

CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4).close()
except OSError as error:
    print(f"blocked: {error}")
    sys.exit(3)
print("connected")
"""


@pytest.fixture(scope="module")
def release(cluster, cluster_images):
    with release_namespace(cluster, "ks-np", RELEASE) as namespace:
        cluster.helm(
            "install",
            RELEASE,
            ".",
            "-n",
            namespace,
            "-f",
            str(VALUES),
            "--set",
            "ingress.enabled=false",
            "--set",
            "networkPolicy.enabled=true",
            "--wait",
            "--timeout",
            "5m",
            timeout=600,
        )
        yield namespace


def _pod(cluster, namespace: str, component: str) -> dict:
    (pod,) = [
        p
        for p in cluster.pods(
            namespace, f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
        )
        if ready(p)
    ]
    return pod


def _from_stranger(cluster, namespace: str, address: str, port: int) -> str:
    """Connect from a pod no policy names (its own labels, the gateway image for Python)."""
    name = f"stranger-{uuid.uuid4().hex[:5]}"
    cluster.kubectl(
        "run",
        name,
        "-n",
        namespace,
        "--image=keras-serving/gateway:ci",
        "--image-pull-policy=Never",
        "--restart=Never",
        "--labels=app=stranger",
        "--command",
        "--",
        "python3",
        "-c",
        CONNECT,
        address,
        str(port),
    )
    try:
        phase = wait_until(
            f"{name} to finish",
            lambda: (
                cluster.get("pod", name, namespace=namespace)["status"]["phase"] in ("Succeeded", "Failed")
                and cluster.get("pod", name, namespace=namespace)["status"]["phase"]
            ),
            120,
            1,
        )
        return f"{phase}: {cluster.kubectl('logs', name, '-n', namespace).stdout.strip()}"
    finally:
        cluster.kubectl("delete", "pod", name, "-n", namespace, "--wait=false", check=False)


def test_only_the_gateway_reaches_the_model_servers_grpc_port(cluster, release, report):
    if not cluster.local:
        pytest.skip("needs to know the cluster enforces NetworkPolicy: make cluster-up's does (kube-router)")
    model_server = _pod(cluster, release, "model-server")
    gateway = _pod(cluster, release, "gateway")
    ip = model_server["status"]["podIP"]
    from_gateway = cluster.kubectl(
        "exec",
        gateway["metadata"]["name"],
        "-n",
        release,
        "--",
        "python3",
        "-c",
        CONNECT,
        ip,
        "8500",
        check=False,
    )
    assert from_gateway.returncode == 0 and "connected" in from_gateway.stdout, (
        from_gateway.stdout + from_gateway.stderr
    )
    stranger_grpc = _from_stranger(cluster, release, ip, 8500)
    stranger_rest = _from_stranger(cluster, release, ip, 8501)
    stranger_gateway = _from_stranger(cluster, release, gateway["status"]["podIP"], 9696)
    section = "NetworkPolicy (kube-router)"
    report.figure(section, "gateway pod -> model server gRPC :8500", "connected")
    report.figure(section, "other pod -> model server gRPC :8500", stranger_grpc)
    report.figure(section, "other pod -> model server REST/metrics :8501", stranger_rest)
    report.figure(section, "other pod -> gateway :9696 (open to clients)", stranger_gateway)
    assert stranger_grpc.startswith("Failed: blocked"), stranger_grpc
    assert stranger_rest.startswith("Failed: blocked"), stranger_rest
    assert stranger_gateway == "Succeeded: connected", stranger_gateway
