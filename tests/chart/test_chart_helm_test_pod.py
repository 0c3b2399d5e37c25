"""The `helm test` hook: a real prediction through the gateway Service, from the gateway image."""

from __future__ import annotations

from chart_render import GATEWAY, NAMESPACE, RELEASE, container, find


def test_hook_pod_runs_the_gateway_selftest_against_the_gateway_service(default_objects):
    pod = find(default_objects, "Pod", f"{RELEASE}-test-prediction")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (selftest,) = pod["spec"]["containers"]
    url = f"http://{GATEWAY}.{NAMESPACE}.svc.cluster.local:80"
    assert selftest["command"] == ["python", "-m", "gateway.selftest", url]
    gateway = container(find(default_objects, "Deployment", GATEWAY), "gateway")
    assert selftest["image"] == gateway["image"], "the test must use an image the release already runs"
    assert pod["spec"]["restartPolicy"] == "Never"


def test_hook_pod_is_hardened(default_objects):
    pod = find(default_objects, "Pod", f"{RELEASE}-test-prediction")
    assert pod["spec"]["automountServiceAccountToken"] is False
    ctx = pod["spec"]["containers"][0]["securityContext"]
    assert ctx["runAsNonRoot"] and ctx["readOnlyRootFilesystem"] and ctx["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["containers"][0]["resources"]["limits"]
