"""Chart-to-containers smoke test: the chart's own rendered Deployments (helm template with
tests/containers/podman-values.yaml) run with `podman kube play`, and a prediction goes through
the gateway pod to the model-server pod.

What this proves: the pod specs as rendered — images, command/args, env from the ConfigMap,
securityContext (non-root uid, read-only root filesystem, dropped capabilities), the init
container that copies the model image into the emptyDir, volume mounts — produce a working
system. What it does not: Services, probes, NetworkPolicy, Ingress, scheduling, rollouts (podman
has no control plane). Podman creates no Services, so the gateway pod gets a hostAliases entry
mapping the model server's Service names to the model-server pod's IP, which is what cluster DNS
would answer for the headless Service.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
import requests
import yaml
from docker_tools import ROOT, demo_sample, image_tag, predict_base64

VALUES = ROOT / "tests" / "containers" / "podman-values.yaml"
RELEASE = "serving"
NAMESPACE = "default"
# This machine's hard nofile limit is below podman's default container ulimit.
CONTAINERS_CONF = '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]\n'


def podman(*args: str, env: dict, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory):
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


@pytest.fixture(scope="module")
def podman_images(podman_env, gateway_image, model_server_image, demo_model_image):
    """Copy the images the tier built from Docker's store into podman's (podman has its own)."""
    tags = [gateway_image, model_server_image, demo_model_image]
    missing = [
        t
        for t in tags
        if podman("image", "exists", t, env=podman_env, check=False).returncode != 0
        or _image_id("docker", t) != _image_id("podman", t, podman_env)
    ]
    if missing:
        replaced = {_image_id("podman", t, podman_env) for t in missing} - {""}
        save = subprocess.Popen(["docker", "save", *missing], stdout=subprocess.PIPE)
        load = subprocess.run(
            ["podman", "load"], stdin=save.stdout, capture_output=True, text=True, env=podman_env, timeout=900
        )
        save.stdout.close()
        assert save.wait(timeout=60) == 0 and load.returncode == 0, load.stderr[-3000:]
        # The previous builds of these tags are now untagged in podman's store: drop them.
        for image_id in replaced - {_image_id("podman", t, podman_env) for t in missing}:
            podman("rmi", image_id, env=podman_env, check=False)
    return tags


def _image_id(tool: str, tag: str, env: dict | None = None) -> str:
    proc = subprocess.run(
        [tool, "image", "inspect", "--format", "{{.Id}}", tag],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    return proc.stdout.strip().removeprefix("sha256:")


def render_chart() -> list[dict]:
    proc = subprocess.run(
        ["helm", "template", RELEASE, str(ROOT), "--namespace", NAMESPACE, "-f", str(VALUES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def pick(docs: list[dict], kind: str, component: str) -> dict:
    found = [
        d
        for d in docs
        if d["kind"] == kind
        and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"expected one {kind} for {component}, found {len(found)}"
    return found[0]


def pod_ip(pod: str, network: str, env: dict) -> str:
    infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", pod, env=env).stdout.strip()
    return podman(
        "inspect",
        "--format",
        f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}',
        infra,
        env=env,
    ).stdout.strip()


def clear_leftovers(env: dict) -> None:
    """Remove what an earlier run killed mid-`kube play` left behind (podman 4.3 can hang there
    until the 600 s timeout; the kill leaves a storage-only container and a volume named after
    the release): pods, containers including storage-only ones, and volumes named `RELEASE-*`.
    Any of them makes the next `kube play` fail on a name already in use."""
    name = f"name={RELEASE}-"
    pods = podman("pod", "ps", "-q", "--filter", name, env=env, check=False).stdout.split()
    if pods:
        podman("pod", "rm", "-f", *pods, env=env, check=False)
    for container in podman(
        "ps", "-a", "--external", "-q", "--filter", name, env=env, check=False
    ).stdout.split():
        podman("rm", "-f", container, env=env, check=False)
        podman("rm", "--storage", container, env=env, check=False)
    volumes = podman("volume", "ls", "-q", "--filter", name, env=env, check=False).stdout.split()
    if volumes:
        podman("volume", "rm", "-f", *volumes, env=env, check=False)


def wait_for(check, what: str, timeout: float, diagnose) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError(f"{what} not reached within {timeout} s\n{diagnose()}")


def test_rendered_deployments_serve_a_prediction_under_podman(podman_env, podman_images, tmp_path):
    docs = render_chart()
    model_server = pick(docs, "Deployment", "model-server")
    gateway = pick(docs, "Deployment", "gateway")
    configmaps = [d for d in docs if d["kind"] == "ConfigMap"]
    # The pods run exactly what the chart rendered, except for what podman lacks (see module doc).
    headless = next(
        d["metadata"]["name"] for d in docs if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None"
    )
    # podman 4.3 removes a finished "once" init container and can race with its exit
    # ("cannot remove container ... as it is running", podman issue 18477); "always" keeps it.
    # For a Deployment podman reads this from the Deployment's own annotations.
    model_server["metadata"].setdefault("annotations", {})["io.podman.annotations.init.container.type"] = (
        "always"
    )
    network = f"ks-podman-{uuid.uuid4().hex[:8]}"
    clear_leftovers(podman_env)
    files = {"model-server": tmp_path / "model-server.yaml", "gateway": tmp_path / "gateway.yaml"}
    files["model-server"].write_text(yaml.safe_dump_all([*configmaps, model_server]))
    podman("network", "create", network, env=podman_env)

    def diagnose() -> str:
        out = podman("ps", "-a", "--format", "{{.Names}} {{.Status}}", env=podman_env, check=False).stdout
        for name in out.split():
            if name.startswith(RELEASE):
                logs = podman("logs", "--tail", "40", name, env=podman_env, check=False)
                out += f"--- {name} ---\n{logs.stdout}{logs.stderr}"
        return out

    try:
        podman("kube", "play", "--network", network, str(files["model-server"]), env=podman_env)
        ms_pod = f"{model_server['metadata']['name']}-pod-0"
        ms_ip = pod_ip(ms_pod, network, podman_env)
        model_url = f"http://{ms_ip}:8501/v1/models/clothing-model"
        wait_for(
            lambda: (
                requests.get(model_url, timeout=3).json()["model_version_status"][0]["state"] == "AVAILABLE"
            ),
            "model server AVAILABLE",
            300,
            diagnose,
        )

        service_names = [f"{headless}.{NAMESPACE}.svc.cluster.local", f"{headless}.{NAMESPACE}.svc", headless]
        gateway["spec"]["template"]["spec"]["hostAliases"] = [{"ip": ms_ip, "hostnames": service_names}]
        files["gateway"].write_text(yaml.safe_dump_all([*configmaps, gateway]))
        podman("kube", "play", "--network", network, str(files["gateway"]), env=podman_env)
        gw_ip = pod_ip(f"{gateway['metadata']['name']}-pod-0", network, podman_env)
        gateway_url = f"http://{gw_ip}:9696"
        wait_for(
            lambda: requests.get(f"{gateway_url}/readyz", timeout=3).status_code == 200,
            "gateway /readyz 200",
            180,
            diagnose,
        )

        image, expected = demo_sample()
        scores = predict_base64(gateway_url, image)
        assert len(scores) == 10 and max(scores, key=scores.get) == expected, scores
        # The securityContext the chart renders is in force: the gateway runs as uid 10001.
        uid = podman(
            "exec",
            f"{gateway['metadata']['name']}-pod-0-gateway",
            "python3",
            "-c",
            "import os; print(os.getuid())",
            env=podman_env,
        )
        assert uid.stdout.strip() == "10001"
    finally:
        for f in files.values():
            if f.exists():
                podman("kube", "down", str(f), env=podman_env, check=False)
        podman("network", "rm", "-f", network, env=podman_env, check=False)
    left = podman(
        "pod", "ps", "-q", "--filter", f"name={RELEASE}-", env=podman_env, check=False
    ).stdout.split()
    assert not left, f"pods left behind: {left}"


def test_podman_values_point_at_the_locally_built_images():
    docs = render_chart()
    images = {
        c["image"]
        for d in docs
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"].get("initContainers", [])
        + d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {image_tag("gateway"), image_tag("model-server-dev"), image_tag("clothing-model")}
