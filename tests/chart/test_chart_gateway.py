"""The gateway subchart: gRPC target, environment, probes, scaling, hardening."""

from __future__ import annotations

import pytest
from chart_render import (
    GATEWAY,
    MODEL_SERVER,
    NAMESPACE,
    REGISTRY,
    ROOT,
    container,
    container_environment,
    find,
    pod_spec,
    render,
    render_error,
)

from gateway.settings import Settings

CI = ROOT / "ci"


@pytest.fixture(scope="module")
def deployment(default_objects) -> dict:
    return find(default_objects, "Deployment", GATEWAY)


@pytest.fixture(scope="module")
def environment(default_objects, deployment) -> dict:
    return container_environment(default_objects, deployment, "gateway")


def test_grpc_client_targets_the_headless_service_through_dns(environment, default_objects):
    target = environment["TF_SERVING_HOST"]
    assert target == f"dns:///{MODEL_SERVER}-headless.{NAMESPACE}.svc.cluster.local:8500"
    assert find(default_objects, "Service", f"{MODEL_SERVER}-headless")["spec"]["clusterIP"] == "None"


def test_environment_carries_the_model_facts_but_not_the_version(environment):
    assert environment["MODEL_NAME"] == "clothing-model"
    assert environment["MODEL_SIGNATURE"] == "serving_default"
    assert environment["PORT"] == "9696"
    assert environment["PREPROCESSING"] == "xception"
    assert environment["APPLY_SOFTMAX"] == "false"
    assert environment["LABELS"] == ""
    assert not [key for key in environment if "VERSION" in key]


def test_environment_maps_every_gateway_setting():
    objects = render(
        CI / "05-model-image-values.yaml",
        sets={
            "gateway.config.fetchAllowedNetworks": "{10.0.0.0/8,192.168.1.0/24}",
            "gateway.config.fetchMaxBytes": 20971520,
            "gateway.config.threads": 16,
            "gateway.config.maxInFlight": 40,
            "gateway.config.maxBufferedBytes": 33554432,
            "gateway.config.modelServerTarget": "tfs.example:8500",
        },
    )
    env = container_environment(objects, find(objects, "Deployment", GATEWAY), "gateway")
    assert env["LABELS"] == "dress,hat,longsleeve,outwear,pants,shirt,shoes,shorts,skirt,t-shirt"
    assert env["FETCH_ALLOWED_NETWORKS"] == "10.0.0.0/8,192.168.1.0/24"
    assert env["FETCH_MAX_BYTES"] == "20971520"
    assert env["THREADS"] == "16"
    assert env["MAX_IN_FLIGHT"] == "40"
    assert env["MAX_BUFFERED_BYTES"] == "33554432"
    assert env["TF_SERVING_HOST"] == "tfs.example:8500"
    assert set(env) >= {
        "GRPC_TIMEOUT_SECONDS",
        "FETCH_TIMEOUT_SECONDS",
        "FETCH_MAX_REDIRECTS",
        "MAX_IMAGE_PIXELS",
        "MAX_REQUEST_BYTES",
        "METADATA_REFRESH_SECONDS",
        "LOG_LEVEL",
        "FETCH_ALLOWED_PORTS",
        "SHUTDOWN_GRACE_SECONDS",
    }


def test_fetch_ports_and_shutdown_grace_default_to_the_gateways_own_defaults(environment):
    # The gateway's settings parser reads the rendered ConfigMap as the container would.
    assert Settings.from_env(environment).fetch_allowed_ports == Settings().fetch_allowed_ports == {80, 443}
    assert environment["FETCH_ALLOWED_PORTS"] == "80,443"
    assert environment["SHUTDOWN_GRACE_SECONDS"] == "20"  # the gateway's documented default


def test_fetch_ports_and_shutdown_grace_are_mapped_from_values(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(
        "gateway:\n  config:\n    fetchAllowedPorts: [443, 8443]\n    shutdownGraceSeconds: 12.5\n"
    )
    env = find(render(values), "ConfigMap", GATEWAY)["data"]
    assert Settings.from_env(env).fetch_allowed_ports == {443, 8443}
    assert float(env["SHUTDOWN_GRACE_SECONDS"]) == 12.5


@pytest.mark.parametrize(
    ("sets", "numbers"),
    [
        (
            {"gateway.config.shutdownGraceSeconds": 26},
            "(26) must be at most gateway.terminationGracePeriodSeconds (30) - gateway.preStopSleepSeconds (5) = 25",
        ),
        (
            {"gateway.preStopSleepSeconds": 11},
            "(20) must be at most gateway.terminationGracePeriodSeconds (30) - gateway.preStopSleepSeconds (11) = 19",
        ),
        (
            {"gateway.terminationGracePeriodSeconds": 24},
            "(20) must be at most gateway.terminationGracePeriodSeconds (24) - gateway.preStopSleepSeconds (5) = 19",
        ),
    ],
    ids=["grace above 30-5", "preStop eats the room", "termination grace too short"],
)
def test_shutdown_grace_that_outlasts_the_termination_grace_fails_with_a_readable_message(sets, numbers):
    """The kubelet kills the container terminationGracePeriodSeconds after preStop starts; SIGTERM
    comes after the preStop sleep, so a longer drain would be cut short mid-request."""
    stderr = render_error(*[arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")])
    assert f"gateway.config.shutdownGraceSeconds {numbers}" in stderr, stderr


def test_shutdown_grace_may_use_all_of_the_termination_grace_after_prestop():
    # 25 = 30 (terminationGracePeriodSeconds) - 5 (preStopSleepSeconds): the edge is allowed.
    env = find(render(sets={"gateway.config.shutdownGraceSeconds": 25}), "ConfigMap", GATEWAY)["data"]
    assert env["SHUTDOWN_GRACE_SECONDS"] == "25"


def test_a_body_budget_below_the_largest_body_fails_at_render_time_and_the_edge_is_allowed():
    """The gateway would exit at start (SettingsError) with such values: the chart says so first."""
    stderr = render_error("--set", "gateway.config.maxBufferedBytes=1048576")
    assert (
        "gateway.config.maxBufferedBytes (1048576) must be at least gateway.config.maxRequestBytes (16777216)"
        in stderr
    ), stderr
    env = find(render(sets={"gateway.config.maxBufferedBytes": 16777216}), "ConfigMap", GATEWAY)["data"]
    settings = Settings.from_env(env)
    assert settings.max_buffered_bytes == settings.max_request_bytes == 16777216


def test_a_body_budget_below_the_largest_download_fails_at_render_time_and_the_edge_is_allowed():
    stderr = render_error(
        "--set", "gateway.config.fetchMaxBytes=33554432", "--set", "gateway.config.maxBufferedBytes=33554431"
    )
    assert (
        "gateway.config.maxBufferedBytes (33554431) must be at least gateway.config.fetchMaxBytes (33554432)"
        in stderr
    ), stderr
    sets = {"gateway.config.fetchMaxBytes": 33554432, "gateway.config.maxBufferedBytes": 33554432}
    settings = Settings.from_env(find(render(sets=sets), "ConfigMap", GATEWAY)["data"])
    assert settings.max_buffered_bytes == settings.fetch_max_bytes == 33554432


def test_container_reads_its_environment_and_rolls_when_it_changes(deployment):
    gateway = container(deployment, "gateway")
    # Its own settings, then those from the rest of the release (rendered by the umbrella chart).
    assert gateway["envFrom"] == [
        {"configMapRef": {"name": GATEWAY}},
        {"configMapRef": {"name": f"{GATEWAY}-wiring"}},
    ]
    assert "checksum/config" in deployment["spec"]["template"]["metadata"]["annotations"]


def test_probes_use_healthz_and_readyz(deployment):
    gateway = container(deployment, "gateway")
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert gateway["ports"] == [{"name": "http", "containerPort": 9696, "protocol": "TCP"}]


def test_terminates_gracefully(deployment):
    spec = pod_spec(deployment)
    assert spec["terminationGracePeriodSeconds"] == 30
    assert container(deployment, "gateway")["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_runs_hardened_without_a_service_account_token(default_objects, deployment):
    spec = pod_spec(deployment)
    assert spec["automountServiceAccountToken"] is False
    assert find(default_objects, "ServiceAccount", GATEWAY)["automountServiceAccountToken"] is False
    ctx = container(deployment, "gateway")["securityContext"]
    assert ctx["runAsNonRoot"] and ctx["readOnlyRootFilesystem"] and not ctx["allowPrivilegeEscalation"]
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_spreads_pods_over_nodes(deployment):
    (constraint,) = pod_spec(deployment)["topologySpreadConstraints"]
    assert constraint["topologyKey"] == "kubernetes.io/hostname"
    assert constraint["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_renders_no_replicas_when_autoscaling_is_enabled():
    objects = render(CI / "06-autoscaling-values.yaml")
    assert "replicas" not in find(objects, "Deployment", GATEWAY)["spec"]
    hpa = find(objects, "HorizontalPodAutoscaler", GATEWAY)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": GATEWAY}


def test_five_gateways_to_two_model_servers():
    objects = render(CI / "09-five-gateways-two-model-servers-values.yaml")
    assert find(objects, "Deployment", GATEWAY)["spec"]["replicas"] == 5
    assert find(objects, "Deployment", MODEL_SERVER)["spec"]["replicas"] == 2
    assert not [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]


def test_service_maps_port_80_to_the_gateway_port(default_objects):
    service = find(default_objects, "Service", GATEWAY)
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]


def test_image_tag_defaults_to_the_chart_app_version_and_digest_wins(deployment):
    assert container(deployment, "gateway")["image"] == f"{REGISTRY}/gateway:0.1.0"
    digest = "sha256:" + "c" * 64
    pinned = find(render(sets={"gateway.image.digest": digest}), "Deployment", GATEWAY)
    assert container(pinned, "gateway")["image"] == f"{REGISTRY}/gateway@{digest}"
