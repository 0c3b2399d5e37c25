"""NetworkPolicy: the model server is reachable only from gateway pods (gRPC) and the metrics
scraper (REST); the gateway port is open to the ingress controller and clients (and, when
narrowed, still to the `helm test` pod and the metrics scraper)."""

from __future__ import annotations

import pytest
from chart_render import GATEWAY, MODEL_SERVER, RELEASE, ROOT, find, render

GATEWAY_PODS = {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": RELEASE}
MODEL_SERVER_PODS = {"app.kubernetes.io/name": "model-server", "app.kubernetes.io/instance": RELEASE}


@pytest.fixture(scope="module")
def locked_down() -> list[dict]:
    return render(ROOT / "ci" / "08-networkpolicy-values.yaml")


def test_model_server_accepts_grpc_only_from_gateway_pods_and_metrics_only_from_prometheus(locked_down):
    policy = find(locked_down, "NetworkPolicy", MODEL_SERVER)["spec"]
    assert policy["podSelector"]["matchLabels"] == MODEL_SERVER_PODS
    assert policy["policyTypes"] == ["Ingress"]
    grpc, metrics = policy["ingress"]
    assert grpc == {
        "from": [{"podSelector": {"matchLabels": GATEWAY_PODS}}],
        "ports": [{"port": 8500, "protocol": "TCP"}],
    }
    assert metrics["ports"] == [{"port": 8501, "protocol": "TCP"}]
    assert metrics["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]


def test_policy_selectors_match_the_deployments_pods(locked_down):
    for name, labels in ((GATEWAY, GATEWAY_PODS), (MODEL_SERVER, MODEL_SERVER_PODS)):
        pod_labels = find(locked_down, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert labels.items() <= pod_labels.items()


def test_gateway_accepts_its_port_only_from_the_ingress_controller_namespace_the_test_pod_and_prometheus(
    locked_down,
):
    policy = find(locked_down, "NetworkPolicy", GATEWAY)["spec"]
    assert policy["podSelector"]["matchLabels"] == GATEWAY_PODS
    test_pod_labels = find(locked_down, "Pod", f"{RELEASE}-test-prediction")["metadata"]["labels"]
    clients, metrics = policy["ingress"]
    ingress_nginx, test_pod = clients["from"]
    assert clients == {
        "ports": [{"port": 9696, "protocol": "TCP"}],
        "from": [ingress_nginx, test_pod],
    }
    assert ingress_nginx == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    }
    # `helm test` runs in the release namespace: a peer without a namespaceSelector means exactly that.
    assert set(test_pod) == {"podSelector"}
    assert test_pod["podSelector"]["matchLabels"].items() <= test_pod_labels.items()
    # /metrics is on the gateway port: the same scraper the model server admits.
    model_server_metrics = find(locked_down, "NetworkPolicy", MODEL_SERVER)["spec"]["ingress"][1]
    assert metrics == {"from": model_server_metrics["from"], "ports": [{"port": 9696, "protocol": "TCP"}]}


def test_gateway_metrics_off_keeps_the_scraper_out_of_a_narrowed_gateway_port():
    objects = render(ROOT / "ci" / "08-networkpolicy-values.yaml", sets={"gateway.metrics.enabled": "false"})
    (clients,) = find(objects, "NetworkPolicy", GATEWAY)["spec"]["ingress"]
    assert not [
        peer
        for peer in clients["from"]
        if "namespaceSelector" in peer
        and peer["namespaceSelector"]["matchLabels"].get("kubernetes.io/metadata.name") == "monitoring"
    ]


def test_gateway_port_is_open_to_any_source_by_default(default_objects):
    assert find(default_objects, "NetworkPolicy", GATEWAY)["spec"]["ingress"] == [
        {"ports": [{"port": 9696, "protocol": "TCP"}]}
    ]


def test_every_other_release_pod_is_denied_ingress(default_objects):
    policy = find(default_objects, "NetworkPolicy", f"{RELEASE}-default-deny")["spec"]
    assert policy == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/instance": RELEASE}},
        "policyTypes": ["Ingress"],
    }


def test_metrics_port_stays_closed_when_metrics_are_off():
    objects = render(sets={"modelServer.metrics.enabled": "false"})
    rules = find(objects, "NetworkPolicy", MODEL_SERVER)["spec"]["ingress"]
    assert [rule["ports"] for rule in rules] == [[{"port": 8500, "protocol": "TCP"}]]


def test_no_policies_when_disabled():
    objects = render(sets={"networkPolicy.enabled": "false"})
    assert not [o for o in objects if o["kind"] == "NetworkPolicy"]
