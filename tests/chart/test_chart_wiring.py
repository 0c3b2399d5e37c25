"""Cross-component wiring: the gateway's gRPC target and the `helm test` pod's URL are derived
from the other component's real Service name and port and global.clusterDomain, for any
combination of overrides, and each subchart renders on its own."""

from __future__ import annotations

import itertools
import re

import pytest
import yaml
from chart_render import REGISTRY, ROOT, container, container_environment, find, run_helm

OVERRIDES = [
    {},
    {"modelServer.fullnameOverride": "tfs", "modelServer.grpcPort": 9000},
    {"modelServer.nameOverride": "tf-serving", "gateway.fullnameOverride": "front"},
    {"gateway.nameOverride": "api", "gateway.service.port": 8080, "global.clusterDomain": "corp.internal"},
    {
        "modelServer.fullnameOverride": "tfs",
        "gateway.fullnameOverride": "front",
        "modelServer.grpcPort": 7000,
        "gateway.service.port": 81,
        "global.clusterDomain": "k8s.example",
    },
]


def _render(release: str, namespace: str, sets: dict) -> list[dict]:
    args = ["template", release, ".", "--namespace", namespace]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    return [d for d in yaml.safe_load_all(run_helm(*args).stdout) if d]


def _service_named(objects: list[dict], host: str, namespace: str, domain: str) -> dict:
    match = re.fullmatch(rf"([a-z0-9-]+)\.{re.escape(namespace)}\.svc\.{re.escape(domain)}", host)
    assert match, f"{host} is not <service>.{namespace}.svc.{domain}"
    return find(objects, "Service", match.group(1))


@pytest.mark.parametrize(
    "sets,release,namespace",
    [
        (sets, release, namespace)
        for sets, (release, namespace) in itertools.product(
            OVERRIDES, [("serving", "ml"), ("prod-a", "team-x")]
        )
    ],
)
def test_targets_resolve_to_rendered_services_on_exposed_ports(sets, release, namespace):
    objects = _render(release, namespace, sets)
    domain = sets.get("global.clusterDomain", "cluster.local")
    gateway = next(
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"
    )
    model_server = next(
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "model-server"
    )

    # The gateway dials dns:///<headless Service>:<gRPC port> of the model server.
    target = container_environment(objects, gateway, "gateway")["TF_SERVING_HOST"]
    host, port = re.fullmatch(r"dns:///(.+):(\d+)", target).groups()
    service = _service_named(objects, host, namespace, domain)
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == model_server["spec"]["selector"]["matchLabels"]
    (exposed,) = service["spec"]["ports"]
    assert exposed["port"] == int(port)
    grpc = next(
        p for p in container(model_server, "model-server")["ports"] if p["name"] == exposed["targetPort"]
    )
    assert grpc["containerPort"] == int(port)  # headless: clients connect to the pod's port itself

    # The helm test pod posts to http://<gateway Service>:<its port>.
    test_pod = next(o for o in objects if o["kind"] == "Pod")
    url = test_pod["spec"]["containers"][0]["command"][-1]
    host, port = re.fullmatch(r"http://(.+):(\d+)", url).groups()
    service = _service_named(objects, host, namespace, domain)
    assert service["spec"]["selector"] == gateway["spec"]["selector"]["matchLabels"]
    assert int(port) in [p["port"] for p in service["spec"]["ports"]]


def test_an_explicit_target_wins_over_the_derived_one():
    objects = _render(
        "serving", "ml", {"gateway.config.modelServerTarget": "dns:///tf.other.svc.cluster.local:8500"}
    )
    gateway = find(objects, "Deployment", "serving-gateway")
    assert (
        container_environment(objects, gateway, "gateway")["TF_SERVING_HOST"]
        == "dns:///tf.other.svc.cluster.local:8500"
    )


def test_gateway_chart_renders_on_its_own_with_an_explicit_target(tmp_path):
    values = tmp_path / "gateway.yaml"
    umbrella = yaml.safe_load((ROOT / "values.yaml").read_text())
    values.write_text(
        yaml.safe_dump(
            {
                **umbrella["gateway"],
                "global": {**umbrella["global"], "imageRegistry": REGISTRY},
                "config": {
                    **umbrella["gateway"]["config"],
                    "modelServerTarget": "dns:///tfs-headless.ml.svc.cluster.local:8500",
                },
            }
        )
    )
    objects = [
        d
        for d in yaml.safe_load_all(run_helm("template", "alone", "charts/gateway", "-f", str(values)).stdout)
        if d
    ]
    deployment = find(objects, "Deployment", "alone-gateway")
    env = container_environment(objects, deployment, "gateway")
    assert env["TF_SERVING_HOST"] == "dns:///tfs-headless.ml.svc.cluster.local:8500"


def test_gateway_chart_on_its_own_without_a_target_fails_with_the_fix(tmp_path):
    values = tmp_path / "gateway.yaml"
    umbrella = yaml.safe_load((ROOT / "values.yaml").read_text())
    values.write_text(yaml.safe_dump({**umbrella["gateway"], "global": umbrella["global"]}))
    proc = run_helm("template", "alone", "charts/gateway", "-f", str(values), check=False)
    assert proc.returncode != 0
    assert "gateway.config.modelServerTarget is required" in proc.stderr


def test_model_server_chart_renders_on_its_own(tmp_path):
    values = tmp_path / "model-server.yaml"
    umbrella = yaml.safe_load((ROOT / "values.yaml").read_text())
    values.write_text(
        yaml.safe_dump(
            {**umbrella["modelServer"], "global": {**umbrella["global"], "imageRegistry": REGISTRY}}
        )
    )
    objects = [
        d
        for d in yaml.safe_load_all(
            run_helm("template", "alone", "charts/model-server", "-f", str(values)).stdout
        )
        if d
    ]
    assert find(objects, "Deployment", "alone-model-server")
    assert find(objects, "Service", "alone-model-server-headless")["spec"]["clusterIP"] == "None"
