"""A release's life on a live cluster, in the order a user lives it: install, helm test, curl
through the Ingress, upgrade to a new model version and roll back under load, scale the model
server out, lose a model-server pod, let the gateway's HPA scale, uninstall. The phases share one
release (module scope) and run in file order; each writes its figures to docs/cluster-test.md."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from kube import VALUES, Cluster, prometheus_counter, ready, terminating, wait_until
from load import LoadLoop
from models import LOGIT_SCALE

RELEASE = "serving"
MIN_RATE = 10.0  # requests per second the load must sustain in every phase (the floor)


class Release:
    def __init__(self, cluster: Cluster, namespace: str):
        self.cluster, self.namespace = cluster, namespace
        self.gateway = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=gateway"
        self.model_server = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=model-server"
        self.host = "serving.keras-serving.test"

    def helm(self, *args: str, timeout: float = 600):
        return self.cluster.helm(*args, "-n", self.namespace, timeout=timeout)

    def values_args(self) -> list[str]:
        import os

        args = [
            "-f",
            str(VALUES),
            "--set",
            f"ingress.className={self.cluster.ingress_class}",
            "--set",
            f"ingress.hosts[0]={self.host}",
        ]
        if os.environ.get("KS_CLUSTER_VALUES"):
            args += ["-f", os.environ["KS_CLUSTER_VALUES"]]
        return args

    def pods(self, selector: str) -> list[dict]:
        return self.cluster.pods(self.namespace, selector)

    def live(self, selector: str) -> list[dict]:
        return [p for p in self.pods(selector) if not terminating(p)]

    def url(self, path: str = "/predict") -> str:
        return f"http://{self.cluster.ingress_address}{path}"

    def load(self, image: bytes, **kw) -> LoadLoop:
        return LoadLoop(url=self.url(), host=self.host, image=image, **kw)

    def wait_for_route(self) -> None:
        """The Ingress controller picks a new Ingress up a moment after it exists."""
        wait_until(
            "the Ingress route to the gateway",
            lambda: (
                requests.get(self.url("/predict"), headers={"Host": self.host}, timeout=10).status_code != 404
            ),
            60,
            1,
        )

    def model_server_metrics(self, pod: str) -> str:
        port = 8501
        return self.cluster.raw(
            f"/api/v1/namespaces/{self.namespace}/pods/{pod}:{port}/proxy/monitoring/prometheus/metrics"
        )

    def requests_served(self, pod: str) -> float:
        return prometheus_counter(
            self.model_server_metrics(pod), ":tensorflow:serving:request_count", status="OK"
        )

    def settle(self, selector: str, replicas: int, timeout: float = 180) -> list[dict]:
        """Wait until exactly `replicas` pods are ready and no pod of `selector` is terminating."""

        def settled():
            pods = self.pods(selector)
            live = [p for p in pods if not terminating(p)]
            return live if len(pods) == len(live) == replicas and all(map(ready, live)) else None

        return wait_until(f"{replicas} ready pod(s) of {selector} and none terminating", settled, timeout, 2)


def _uids(pods: list[dict]) -> set[str]:
    return {p["metadata"]["uid"] for p in pods}


@pytest.fixture(scope="module")
def release(cluster, cluster_images, report) -> Release:
    namespace = f"ks-test-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    rel = Release(cluster, namespace)
    yield rel
    status = cluster.helm("status", RELEASE, "-n", namespace, check=False)
    if status.returncode == 0:
        cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "5m", check=False)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _post(release: Release, image: bytes) -> requests.Response:
    return requests.post(
        release.url(),
        files={"image": ("sample.jpg", image, "image/jpeg")},
        headers={"Host": release.host},
        timeout=30,
    )


def _assert_phase(report, section: str, summary: dict) -> None:
    report.figure(section, "requests sent / failed", f"{summary['sent']} / {summary['failed']}")
    report.figure(section, "request rate", f"{summary['rate']} /s")
    report.figure(section, "answers by model version", summary["versions"])
    assert summary["failed"] == 0, summary["errors"]
    assert summary["rate"] >= MIN_RATE, summary


def test_install_is_ready_and_helm_test_passes(release, report):
    started = time.monotonic()
    release.helm("install", RELEASE, ".", *release.values_args(), "--wait", "--timeout", "10m")
    report.figure("install", "helm install --wait (every pod Ready)", f"{time.monotonic() - started:.0f} s")
    release.wait_for_route()
    for pod in release.pods(f"app.kubernetes.io/instance={RELEASE}"):
        assert ready(pod), pod["metadata"]["name"]
    started = time.monotonic()
    out = release.helm("test", RELEASE, "--timeout", "5m").stdout
    assert "Phase:          Succeeded" in out, out
    report.figure(
        "install",
        "helm test (one prediction through the gateway Service)",
        f"passed in {time.monotonic() - started:.0f} s",
    )


def test_prediction_through_the_ingress_names_the_right_class(release, sample_image, report):
    image, true_class = sample_image
    response = _post(release, image)
    assert response.status_code == 200, response.text
    scores = response.json()
    assert len(scores) == 10 and max(scores, key=scores.get) == true_class, scores
    assert response.headers["X-Model-Version"] == "1"
    ingress = release.cluster.get("ingress", namespace=release.namespace)["items"][0]
    assert ingress["spec"]["ingressClassName"] == release.cluster.ingress_class
    report.figure(
        "install",
        f"POST /predict through the Ingress ({release.cluster.ingress_class})",
        f"200, top class {true_class}, {len(scores)} scores",
    )
    release.v1_scores = scores


def _roll(release: Release, report, sample_image, section: str, command: list[str], version: str) -> None:
    """Run a helm command that changes the model version under load; 0 failed requests while the
    new pods come up, the old ones drain and are killed; gateways untouched."""
    image, _ = sample_image
    gateways = _uids(release.pods(release.gateway))
    old_model_servers = _uids(release.live(release.model_server))
    with release.load(image) as load:
        time.sleep(3)
        start = load.mark()
        release.helm(*command, "--wait", "--timeout", "10m")
        rolled = load.mark()
        # The old pods serve on while gateways move off them (TF Serving ignores SIGTERM): the
        # phase ends when they are gone and every answer comes from the new version.
        wait_until(
            "the old model-server pods to be gone",
            lambda: not (_uids(release.pods(release.model_server)) & old_model_servers),
            180,
            2,
        )
        gone = load.mark()
        wait_until(
            f"answers from version {version} only",
            lambda: {a.version for a in load.since(load.mark() - 3)} == {version},
            60,
            1,
        )
        time.sleep(2)
        end = load.mark()
    summary = LoadLoop.summary(load.since(start, end))
    report.figure(section, f"helm {command[0]} --wait", f"{rolled - start:.0f} s")
    report.figure(section, "old model-server pods gone after", f"{gone - start:.0f} s")
    _assert_phase(report, section, summary)
    assert _uids(release.pods(release.gateway)) == gateways, "the gateways were restarted"
    report.figure(section, "gateway pods restarted", "none (same pod UIDs)")
    assert LoadLoop.summary(load.since(end - 2, end))["versions"].keys() == {version}


def test_upgrade_to_model_version_2_under_load_fails_no_request(release, report, sample_image):
    _roll(
        release,
        report,
        sample_image,
        "upgrade to version 2",
        ["upgrade", RELEASE, ".", "--reuse-values", "--set", "global.model.version=2"],
        "2",
    )
    response = _post(release, sample_image[0])
    assert response.headers["X-Model-Version"] == "2"
    v2 = response.json()
    # A genuinely different export: version 2's logits are half of version 1's.
    for label, score in release.v1_scores.items():
        assert v2[label] == pytest.approx(score * LOGIT_SCALE[2], rel=1e-3, abs=1e-4)


def test_rollback_under_load_fails_no_request(release, report, sample_image):
    _roll(release, report, sample_image, "rollback to version 1", ["rollback", RELEASE, "1"], "1")
    assert _post(release, sample_image[0]).json() == pytest.approx(release.v1_scores, rel=1e-4)


def test_scale_out_new_model_server_gets_traffic_and_load_balances(release, report, sample_image):
    image, _ = sample_image
    (first,) = release.live(release.model_server)
    with release.load(image) as load:
        time.sleep(2)
        start = load.mark()
        release.helm(
            "upgrade",
            RELEASE,
            ".",
            "--reuse-values",
            "--set",
            "modelServer.replicaCount=2",
            "--wait",
            "--timeout",
            "10m",
        )
        pods = release.settle(release.model_server, 2)
        (new,) = [p for p in pods if p["metadata"]["uid"] != first["metadata"]["uid"]]
        name = new["metadata"]["name"]
        ready_at = load.mark()
        # Running gateways learn of the new pod when the model server closes their connection
        # (max connection age) and they re-resolve the headless Service.
        baseline = release.requests_served(name)
        wait_until(f"{name} to serve requests", lambda: release.requests_served(name) > baseline, 60, 1)
        serving_after = load.mark() - ready_at
        counts = {p["metadata"]["name"]: release.requests_served(p["metadata"]["name"]) for p in pods}
        time.sleep(30)
        later = {p["metadata"]["name"]: release.requests_served(p["metadata"]["name"]) for p in pods}
        end = load.mark()
    share = {pod: later[pod] - counts[pod] for pod in counts}
    report.figure(
        "scale-out 1 -> 2 model servers", "new pod Ready -> serving requests", f"{serving_after:.0f} s"
    )
    report.figure(
        "scale-out 1 -> 2 model servers",
        "requests per pod over the next 30 s (their own metrics)",
        ", ".join(f"{int(v)}" for v in share.values()),
    )
    balance = max(share.values()) / max(min(share.values()), 1)
    report.figure("scale-out 1 -> 2 model servers", "max / min", f"{balance:.2f}")
    _assert_phase(report, "scale-out 1 -> 2 model servers", LoadLoop.summary(load.since(start, end)))
    assert serving_after <= 60
    assert min(share.values()) > 0 and balance <= 1.5, share


def test_model_server_pod_deleted_under_load_fails_no_request(release, report, sample_image):
    image, _ = sample_image
    victim, survivor = release.live(release.model_server)
    with release.load(image) as load:
        time.sleep(3)
        start = load.mark()
        release.cluster.kubectl(
            "delete", "pod", victim["metadata"]["name"], "-n", release.namespace, "--wait=false"
        )
        wait_until(
            "the deleted pod to be gone",
            lambda: victim["metadata"]["uid"] not in _uids(release.pods(release.model_server)),
            180,
            2,
        )
        gone = load.mark()
        release.settle(release.model_server, 2)
        time.sleep(3)
        end = load.mark()
    report.figure(
        "model-server pod deleted (2 replicas)", "deleted pod gone after (drain)", f"{gone - start:.0f} s"
    )
    _assert_phase(report, "model-server pod deleted (2 replicas)", LoadLoop.summary(load.since(start, end)))
    assert survivor["metadata"]["uid"] in _uids(release.pods(release.model_server))


def test_gateway_hpa_reads_cpu_and_scales_out_and_back_in(release, report, sample_image):
    image, _ = sample_image
    section = "gateway HPA"
    release.helm(
        "upgrade",
        RELEASE,
        ".",
        "--reuse-values",
        "-f",
        str(VALUES.with_name("hpa-values.yaml")),
        "--wait",
        "--timeout",
        "10m",
    )
    hpa_name = f"{RELEASE}-gateway"

    def hpa() -> dict:
        return release.cluster.get("hpa", hpa_name, namespace=release.namespace)

    def cpu(h: dict):
        for metric in h.get("status", {}).get("currentMetrics") or []:
            value = metric.get("resource", {}).get("current", {}).get("averageUtilization")
            if value is not None:
                return value
        return None

    target = release.cluster.get("hpa", hpa_name, namespace=release.namespace)["spec"]["metrics"][0][
        "resource"
    ]["target"]["averageUtilization"]

    # At rest: the figure the HPA reads (kubectl get hpa) settles below the target once the
    # previous phases' load has left metrics-server's window.
    def at_rest():
        h = hpa()
        status = h.get("status", {})
        settled = status.get("currentReplicas") == status.get("desiredReplicas") == 1
        return h if settled and cpu(h) is not None and cpu(h) < target else None

    # At rest: one replica, and a CPU figure (what kubectl get hpa shows) under the target.
    idle = wait_until("the gateway HPA at rest: 1 replica, CPU below its target", at_rest, 300, 3)
    release.settle(release.gateway, 1, timeout=180)
    report.figure(
        section,
        "CPU at rest (kubectl get hpa)",
        f"{cpu(idle)} % of requests (target {target} %), {idle['status']['currentReplicas']} replica(s)",
    )
    with release.load(image, rate=30, threads=8) as load:
        start = load.mark()

        def scaled_out():
            h = hpa()
            return h if h["status"].get("desiredReplicas", 1) > 1 else None

        busy = wait_until("the gateway HPA to scale out", scaled_out, 240, 3)
        out_at = load.mark()
        report.figure(
            section, "under load: CPU, replicas wanted", f"{cpu(busy)} %, {busy['status']['desiredReplicas']}"
        )
        release.settle(release.gateway, busy["status"]["desiredReplicas"], timeout=180)
        end = load.mark()
    report.figure(section, "load start -> scale-out decision", f"{out_at - start:.0f} s")
    _assert_phase(report, section, LoadLoop.summary(load.since(start, end)))
    started = time.monotonic()
    wait_until(
        "the gateway HPA to scale back in", lambda: hpa()["status"].get("desiredReplicas") == 1, 300, 5
    )
    release.settle(release.gateway, 1, timeout=180)
    report.figure(section, "load stop -> back to 1 replica", f"{time.monotonic() - started:.0f} s")


def test_uninstall_leaves_nothing_of_the_release(release, report):
    release.helm("uninstall", RELEASE, "--wait", "--timeout", "5m")
    # Pods end after their drain (the model server's grace period).
    wait_until(
        "the release's pods to be gone",
        lambda: not release.pods(f"app.kubernetes.io/instance={RELEASE}"),
        180,
        3,
    )
    left = release.cluster.kubectl(
        "get",
        "all,configmap,secret,ingress,networkpolicy,pdb,hpa,serviceaccount,pvc",
        "-n",
        release.namespace,
        "-o",
        "name",
    ).stdout.split()
    # What every namespace has on its own: the default service account and the cluster's CA bundle.
    left = [name for name in left if name not in ("serviceaccount/default", "configmap/kube-root-ca.crt")]
    report.figure("uninstall", "objects left in the namespace", ", ".join(left) or "none")
    assert not left
