"""NetworkPolicy, every ci/ scenario: the rendered policies allow exactly gateway -> model server
(gRPC port), clients/ingress -> gateway (its HTTP port), the `helm test` pod -> gateway (HTTP
port, when `gatewayFrom` narrows it; an open port already admits it) and the metrics scrape ->
model server (REST port, only when its metrics are on) and -> gateway (HTTP port, where /metrics
is served; when `gatewayFrom` narrows it and gateway metrics are on), and nothing else. test_chart_networkpolicy.py checks the
shape of each rule for chosen values; this file derives the complete set of allowed flows from
the rendered objects of every scenario and compares it with the one the values ask for."""

from __future__ import annotations

import json

import pytest
import yaml
from chart_render import RELEASE, ROOT, SCENARIOS, render

GATEWAY_PODS = {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": RELEASE}
MODEL_SERVER_PODS = {"app.kubernetes.io/name": "model-server", "app.kubernetes.io/instance": RELEASE}
TEST_POD = f"{RELEASE}-test-prediction"
TEST_POD_PEER = {
    "podSelector": {
        "matchLabels": {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "test"}
    }
}
ANY_SOURCE = "any source"


def merged_values(scenario) -> dict:
    """values.yaml overlaid with the scenario file the way Helm merges (maps deep, lists replace)."""

    def merge(base, over):
        if isinstance(base, dict) and isinstance(over, dict):
            return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
        return over

    return merge(
        yaml.safe_load((ROOT / "values.yaml").read_text()), yaml.safe_load(scenario.read_text()) or {}
    )


def pod_templates(objects) -> dict[str, tuple[dict, dict]]:
    """name -> (pod labels, pod spec) for every pod the release can run."""
    pods = {}
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            pods[obj["metadata"]["name"]] = (
                obj["spec"]["template"]["metadata"]["labels"],
                obj["spec"]["template"]["spec"],
            )
        elif obj["kind"] == "Pod":
            pods[obj["metadata"]["name"]] = (obj["metadata"]["labels"], obj["spec"])
    return pods


def selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, f"matchExpressions not modelled here: {selector}"
    return selector.get("matchLabels", {}).items() <= labels.items()


def container_port(pod_spec: dict, name: str) -> int:
    for container in pod_spec["containers"]:
        for port in container.get("ports", []):
            if port["name"] == name:
                return port["containerPort"]
    raise AssertionError(f"no container port named {name}")


def allowed_flows(policies: list[dict], pods: dict) -> set[tuple[str, int, str]]:
    """(target pod, port, source) for every ingress rule; a source is a peer as canonical JSON."""
    flows = set()
    for policy in policies:
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec, policy["metadata"]["name"]
        targets = [name for name, (labels, _) in pods.items() if selects(spec["podSelector"], labels)]
        for rule in spec.get("ingress", []):
            assert rule.get("ports"), f"{policy['metadata']['name']}: a rule without ports opens every port"
            sources = (
                [json.dumps(peer, sort_keys=True) for peer in rule["from"]]
                if rule.get("from")
                else [ANY_SOURCE]
            )
            for port in rule["ports"]:
                assert port.get("protocol", "TCP") == "TCP" and isinstance(port["port"], int), port
                flows |= {(target, port["port"], source) for target in targets for source in sources}
    return flows


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_policies_allow_exactly_the_expected_flows(scenario):
    values = merged_values(scenario)
    objects = render(scenario)
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    if not values["networkPolicy"]["enabled"]:
        assert policies == []
        return
    pods = pod_templates(objects)
    gateway, model_server = f"{RELEASE}-gateway", f"{RELEASE}-model-server"
    grpc = container_port(pods[model_server][1], "grpc")
    rest = container_port(pods[model_server][1], "http")
    http = container_port(pods[gateway][1], "http")

    gateway_peer = json.dumps({"podSelector": {"matchLabels": GATEWAY_PODS}}, sort_keys=True)
    expected = {(model_server, grpc, gateway_peer)}
    gateway_from = values["networkPolicy"]["gatewayFrom"]
    if gateway_from:
        # `helm test` runs its pod in the release namespace, which a narrowed gatewayFrom (say the
        # ingress controller's namespace) leaves out: without this flow `helm test` fails.
        expected |= {(gateway, http, json.dumps(p, sort_keys=True)) for p in [*gateway_from, TEST_POD_PEER]}
        # The gateway's /metrics shares its HTTP port: the scraper the model server admits (same
        # peers) must get through too, or Prometheus sees the gateway target down.
        if values["gateway"]["metrics"]["enabled"]:
            expected |= {
                (gateway, http, json.dumps(p, sort_keys=True)) for p in values["networkPolicy"]["metricsFrom"]
            }
    else:
        expected |= {(gateway, http, ANY_SOURCE)}
    if values["modelServer"]["metrics"]["enabled"]:
        expected |= {
            (model_server, rest, json.dumps(p, sort_keys=True))
            for p in values["networkPolicy"]["metricsFrom"]
        }
    assert allowed_flows(policies, pods) == expected

    # The gateway peer selects the gateway pods and nothing else of the release.
    assert [name for name, (labels, _) in pods.items() if selects({"matchLabels": GATEWAY_PODS}, labels)] == [
        gateway
    ]
    # The test-pod peer selects the `helm test` hook pod and nothing else of the release.
    assert [name for name, (labels, _) in pods.items() if selects(TEST_POD_PEER["podSelector"], labels)] == [
        TEST_POD
    ]
    assert any(
        o["kind"] == "Pod"
        and o["metadata"]["name"] == TEST_POD
        and o["metadata"]["annotations"]["helm.sh/hook"] == "test"
        for o in objects
    )
    # Default deny: one policy without rules selects every pod the release runs (test pod too).
    deny = [p for p in policies if not p["spec"].get("ingress")]
    assert len(deny) == 1 and len(policies) == 3
    assert all(selects(deny[0]["spec"]["podSelector"], labels) for labels, _ in pods.values()), pods.keys()
    # Metrics peers never widen to "everything": an empty peer would match all pods.
    assert all(peer for peer in values["networkPolicy"]["metricsFrom"])
