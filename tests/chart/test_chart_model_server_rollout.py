"""The model server's rollout, drain and sizing rules: what finishes on a one-GPU pool, what a
ReadWriteOnce claim allows, how long a stopping TF Serving keeps serving, how many threads it
gets — each refused at render time with the fix when the values contradict it."""

from __future__ import annotations

import pytest
from chart_render import MODEL_SERVER, ROOT, container, find, pod_spec, render, render_error

CI_DIR = ROOT / "ci"


def strategy(objects) -> dict:
    return find(objects, "Deployment", MODEL_SERVER)["spec"]["strategy"]["rollingUpdate"]


def args(objects) -> list[str]:
    return container(find(objects, "Deployment", MODEL_SERVER), "model-server")["args"]


def test_gpu_rollout_replaces_one_pod_at_a_time_so_one_gpu_is_enough():
    # A surge pod would wait for a second GPU that a one-GPU pool does not have.
    assert strategy(render(CI_DIR / "02-gpu-values.yaml")) == {"maxSurge": 0, "maxUnavailable": 1}


def test_rollout_strategy_is_a_value():
    objects = render(
        CI_DIR / "02-gpu-values.yaml",
        sets={"modelServer.rollingUpdate.maxSurge": 1, "modelServer.rollingUpdate.maxUnavailable": 0},
    )
    assert strategy(objects) == {"maxSurge": 1, "maxUnavailable": 0}
    assert strategy(render(sets={"modelServer.rollingUpdate.maxSurge": "25%"}))["maxSurge"] == "25%"


def test_chart_created_read_write_once_claim_runs_one_pod_at_a_time():
    objects = render(CI_DIR / "10-chart-created-pvc-values.yaml")
    assert strategy(objects) == {"maxSurge": 0, "maxUnavailable": 1}


@pytest.mark.parametrize(
    "sets",
    [
        {"modelServer.replicaCount": 2},
        {"modelServer.autoscaling.enabled": "true"},
        {"modelServer.rollingUpdate.maxSurge": 1},
    ],
)
def test_read_write_once_claim_with_more_than_one_pod_is_refused(sets):
    extra = [a for key, value in sets.items() for a in ("--set", f"{key}={value}")]
    stderr = render_error("-f", str(CI_DIR / "10-chart-created-pvc-values.yaml"), *extra)
    assert "ReadWriteOnce" in stderr and "one pod at a time" in stderr


def test_shared_claims_may_have_several_model_servers():
    objects = render(
        CI_DIR / "10-chart-created-pvc-values.yaml",
        sets={"global.model.source.pvc.accessModes[0]": "ReadWriteMany", "modelServer.replicaCount": 3},
    )
    assert find(objects, "Deployment", MODEL_SERVER)["spec"]["replicas"] == 3


def test_grpc_and_rest_on_one_port_is_refused():
    stderr = render_error("--set", "modelServer.grpcPort=8501")
    assert "grpcPort and modelServer.restPort are both 8501" in stderr


@pytest.mark.parametrize(
    "sets,needle",
    [
        ({"modelServer.preStopSleepSeconds": 30}, "preStopSleepSeconds (30) must be at least"),
        (
            {"modelServer.connections.maxConnectionAgeSeconds": 120},
            "preStopSleepSeconds (50) must be at least",
        ),
        (
            {"modelServer.terminationGracePeriodSeconds": 40},
            "terminationGracePeriodSeconds (40) must be at least",
        ),
    ],
)
def test_drain_shorter_than_the_gateways_need_is_refused(sets, needle):
    extra = [a for key, value in sets.items() for a in ("--set", f"{key}={value}")]
    assert needle in render_error(*extra)


def test_longer_connection_age_renders_with_a_matching_drain():
    objects = render(
        sets={
            "modelServer.connections.maxConnectionAgeSeconds": 60,
            "modelServer.preStopSleepSeconds": 80,
            "modelServer.terminationGracePeriodSeconds": 90,
        }
    )
    assert (
        "--grpc_channel_arguments=grpc.max_connection_age_ms=60000,grpc.max_connection_age_grace_ms=10000"
        in args(objects)
    )


@pytest.mark.parametrize("limit,threads", [("2", 2), ("1500m", 2), ("500m", 1), ("4", 4), (3, 3)])
def test_thread_pools_follow_the_cpu_limit_not_the_node(limit, threads):
    found = args(render(sets={"modelServer.resources.limits.cpu": limit}))
    assert f"--tensorflow_intra_op_parallelism={threads}" in found
    assert f"--tensorflow_inter_op_parallelism={threads}" in found


def test_thread_pools_can_be_set_explicitly():
    found = args(render(sets={"modelServer.parallelism.intraOp": 6, "modelServer.parallelism.interOp": 1}))
    assert "--tensorflow_intra_op_parallelism=6" in found and "--tensorflow_inter_op_parallelism=1" in found


def test_gpu_image_gets_a_writable_cuda_cache_under_the_read_only_root():
    spec = pod_spec(find(render(CI_DIR / "02-gpu-values.yaml"), "Deployment", MODEL_SERVER))
    server = spec["containers"][0]
    assert {"name": "CUDA_CACHE_PATH", "value": "/tmp/cuda-cache"} in server["env"]
    assert {"name": "tmp", "mountPath": "/tmp"} in server["volumeMounts"]
    assert server["securityContext"]["readOnlyRootFilesystem"] is True


def test_model_emptydir_is_requested_as_ephemeral_storage():
    server = pod_spec(find(render(), "Deployment", MODEL_SERVER))["containers"][0]
    assert server["resources"]["requests"]["ephemeral-storage"] == "2Gi"
    pvc = pod_spec(find(render(CI_DIR / "03-existing-pvc-values.yaml"), "Deployment", MODEL_SERVER))[
        "containers"
    ][0]
    assert "ephemeral-storage" not in pvc["resources"]["requests"]
