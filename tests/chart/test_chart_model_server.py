"""The TF Serving subchart: flags, probes, rollout, GPU, model delivery, Services, configs."""

from __future__ import annotations

import pytest
from chart_render import MODEL_SERVER, REGISTRY, ROOT, container, find, pod_spec, render, render_error

CI = ROOT / "ci"


@pytest.fixture(scope="module")
def deployment(default_objects) -> dict:
    return find(default_objects, "Deployment", MODEL_SERVER)


def test_runs_tensorflow_model_server_with_tf_serving_flags(deployment):
    server = container(deployment, "model-server")
    assert server["image"] == "tensorflow/serving:2.21.0"
    assert server["command"] == ["tensorflow_model_server"]
    assert server["args"][:6] == [
        "--port=8500",
        "--rest_api_port=8501",
        "--model_name=clothing-model",
        "--model_base_path=/models/clothing-model",
        "--file_system_poll_wait_seconds=30",
        "--enable_model_warmup=true",
    ]
    assert "--monitoring_config_file=/etc/tfserving/monitoring.config" in server["args"]
    assert not [a for a in server["args"] if "batching" in a]


def test_readiness_and_startup_probes_ask_whether_the_pinned_version_is_loaded(deployment):
    # /v1/models/<name> answers 200 in every version state; the metadata of one version only
    # while that version is AVAILABLE.
    server = container(deployment, "model-server")
    for probe in ("startupProbe", "readinessProbe"):
        assert server[probe]["httpGet"] == {
            "path": "/v1/models/clothing-model/versions/1/metadata",
            "port": "http",
        }
    startup = server["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, "big models need minutes"
    assert server["livenessProbe"]["tcpSocket"] == {"port": "grpc"}


def test_rolls_out_without_losing_capacity(deployment):
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_drain_outlasts_every_gateway_connection(deployment):
    # TF Serving ignores SIGTERM; gateways leave a stopping pod when their connection to it
    # reaches its maximum age (30 s) plus grace (10 s), then re-resolve DNS.
    server = container(deployment, "model-server")
    assert (
        "--grpc_channel_arguments=grpc.max_connection_age_ms=30000,grpc.max_connection_age_grace_ms=10000"
        in server["args"]
    )
    assert server["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "50"]
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= 50


def test_runs_hardened(deployment):
    spec = pod_spec(deployment)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    for c in spec["containers"] + spec["initContainers"]:
        ctx = c["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["limits"] and c["resources"]["requests"]


def test_gpu_scenario_uses_the_gpu_image_two_gpus_and_the_gpu_pool():
    spec = pod_spec(find(render(CI / "02-gpu-values.yaml"), "Deployment", MODEL_SERVER))
    server = spec["containers"][0]
    assert server["image"] == "tensorflow/serving:2.21.0-gpu"
    assert server["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}


def test_cpu_model_server_requests_no_gpu(deployment):
    assert "nvidia.com/gpu" not in container(deployment, "model-server")["resources"]["limits"]


def test_model_image_source_copies_the_model_in_with_an_init_container(deployment):
    spec = pod_spec(deployment)
    (init,) = spec["initContainers"]
    assert init["image"] == f"{REGISTRY}/clothing-model:1"
    assert init["args"] == ["copy", "--src", "/model", "--dest", "/models/clothing-model/1"]
    assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]
    assert {"name": "models", "emptyDir": {"sizeLimit": "2Gi"}} in spec["volumes"]
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in spec["containers"][0][
        "volumeMounts"
    ]


def test_url_source_downloads_and_verifies_the_archive():
    spec = pod_spec(find(render(CI / "04-url-download-values.yaml"), "Deployment", MODEL_SERVER))
    (init,) = spec["initContainers"]
    assert init["image"] == f"{REGISTRY}/model-loader:0.1.0"
    assert init["args"] == [
        "fetch",
        "--url",
        "https://models.example.com/clothing-model/2.tar.gz",
        "--sha256",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "--dest",
        "/models/clothing-model/2",
    ]
    # The archive is downloaded beside the version directory: room for both (2 x sizeLimit 1Gi).
    assert {"name": "models", "emptyDir": {"sizeLimit": "2Gi"}} in spec["volumes"]
    assert spec["containers"][0]["resources"]["requests"]["ephemeral-storage"] == "2Gi"


def test_loader_failures_show_in_the_pod_status():
    # `kubectl describe pod` shows "checksum mismatch ..." instead of a bare exit code.
    spec = pod_spec(find(render(CI / "04-url-download-values.yaml"), "Deployment", MODEL_SERVER))
    assert spec["initContainers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_existing_pvc_source_mounts_the_claim_read_only_with_no_init_container():
    objects = render(CI / "03-existing-pvc-values.yaml")
    spec = pod_spec(find(objects, "Deployment", MODEL_SERVER))
    assert "initContainers" not in spec
    assert {
        "name": "models",
        "persistentVolumeClaim": {"claimName": "model-store", "readOnly": True},
    } in spec["volumes"]
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]


def test_chart_created_pvc_is_kept_on_uninstall():
    objects = render(CI / "10-chart-created-pvc-values.yaml")
    claim = find(objects, "PersistentVolumeClaim", f"{MODEL_SERVER}-models")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    volumes = pod_spec(find(objects, "Deployment", MODEL_SERVER))["volumes"]
    assert {
        "name": "models",
        "persistentVolumeClaim": {"claimName": f"{MODEL_SERVER}-models", "readOnly": True},
    } in volumes


def test_image_volume_is_rendered_exactly_when_the_values_ask_for_it():
    # An explicit value, whatever version the render assumes: `helm template` without
    # --kube-version (GitOps tools) must not switch behaviour on Helm's default version.
    values = CI / "05-model-image-values.yaml"
    image = "registry.example.com/ml/clothing-model@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
    for extra in ((), ("--kube-version", "1.33.0"), ("--kube-version", "1.36.0")):
        on = pod_spec(
            find(
                render(values, sets={"global.model.source.image.useImageVolume": "true"}, extra=extra),
                "Deployment",
                MODEL_SERVER,
            )
        )
        assert "initContainers" not in on
        assert {"name": "models", "image": {"reference": image, "pullPolicy": "IfNotPresent"}} in on[
            "volumes"
        ]
        assert {
            "name": "models",
            "mountPath": "/models/clothing-model/4",
            "subPath": "model",
            "readOnly": True,
        } in on["containers"][0]["volumeMounts"]
        off = pod_spec(find(render(values, extra=extra), "Deployment", MODEL_SERVER))
        assert off["initContainers"][0]["image"] == image
        assert not [v for v in off["volumes"] if "image" in v]


def test_image_volume_on_a_cluster_without_the_field_fails_at_render():
    stderr = render_error(
        "--set", "global.model.source.image.useImageVolume=true", "--kube-version", "1.32.0"
    )
    assert "useImageVolume" in stderr and "1.33" in stderr


def test_headless_service_publishes_every_ready_pod_for_grpc(default_objects):
    headless = find(default_objects, "Service", f"{MODEL_SERVER}-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["ports"] == [
        {"name": "grpc", "port": 8500, "targetPort": "grpc", "protocol": "TCP"}
    ]
    service = find(default_objects, "Service", MODEL_SERVER)
    assert {p["port"] for p in service["spec"]["ports"]} == {8500, 8501}
    assert headless["spec"]["selector"] == service["spec"]["selector"]


def test_monitoring_config_enables_prometheus_on_the_rest_port(default_objects, deployment):
    config = find(default_objects, "ConfigMap", MODEL_SERVER)["data"]["monitoring.config"]
    assert "enable: true" in config and 'path: "/monitoring/prometheus/metrics"' in config
    assert "checksum/config" in deployment["spec"]["template"]["metadata"]["annotations"]


def test_batching_parameters_come_from_values():
    objects = render(CI / "09-five-gateways-two-model-servers-values.yaml")
    config = find(objects, "ConfigMap", MODEL_SERVER)["data"]["batching.config"]
    assert "max_batch_size { value: 16 }" in config
    assert "batch_timeout_micros { value: 2000 }" in config
    args = container(find(objects, "Deployment", MODEL_SERVER), "model-server")["args"]
    assert "--enable_batching=true" in args
    assert "--batching_parameters_file=/etc/tfserving/batching.config" in args


def test_no_config_map_and_no_checksum_when_metrics_and_batching_are_off():
    objects = render(sets={"modelServer.metrics.enabled": "false"})
    assert not [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == MODEL_SERVER]
    annotations = (
        find(objects, "Deployment", MODEL_SERVER)["spec"]["template"]["metadata"].get("annotations") or {}
    )
    assert "checksum/config" not in annotations


def test_renders_no_replicas_when_autoscaling_is_enabled():
    objects = render(CI / "06-autoscaling-values.yaml")
    assert "replicas" not in find(objects, "Deployment", MODEL_SERVER)["spec"]
    hpa = find(objects, "HorizontalPodAutoscaler", MODEL_SERVER)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 75


def test_pod_disruption_budget_selects_the_model_servers(default_objects, deployment):
    pdb = find(default_objects, "PodDisruptionBudget", MODEL_SERVER)
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_default_tf_serving_tag_matches_the_tensorflow_the_converter_exports_with():
    # SavedModels from `model convert` are written by the pinned tensorflow-cpu; the default
    # tensorflow/serving tag (the subchart's appVersion) must be that same release.
    import re

    import yaml

    pinned = re.search(
        r"^tensorflow-cpu==(\S+)$", (ROOT / "requirements" / "dev.txt").read_text(), re.M
    ).group(1)
    app_version = yaml.safe_load((ROOT / "charts" / "model-server" / "Chart.yaml").read_text())["appVersion"]
    assert app_version == pinned
    server = container(find(render(), "Deployment", MODEL_SERVER), "model-server")
    assert server["image"] == f"tensorflow/serving:{pinned}"
