"""The cluster tier's handle on a live cluster: kubectl and helm against one kubeconfig, and
bounded waits that say what they waited for. No fixtures here (see conftest.py)."""

from __future__ import annotations

import contextlib
import json
import pathlib
import subprocess
import time
import uuid
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[2]
VALUES = pathlib.Path(__file__).resolve().parent / "cluster-values.yaml"


def read_env_file(path: pathlib.Path) -> dict[str, str]:
    """KEY=value lines (cluster/cluster.env, the cluster's timings.env)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
    return values


CLUSTER_ENV = read_env_file(ROOT / "cluster" / "cluster.env")


@dataclass
class Cluster:
    kubeconfig: str
    ingress_address: str  # host:port where the Ingress controller listens
    ingress_class: str
    local: bool  # make cluster-up's cluster (images are imported into its containerd)

    def run(
        self, tool: str, *args: str, check: bool = True, timeout: float = 300, input: str | None = None
    ) -> subprocess.CompletedProcess:
        env = {
            "KUBECONFIG": self.kubeconfig,
            "PATH": f"{ROOT / '.tools' / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "HELM_CACHE_HOME": "/tmp/ks-helm-cache",
            "HELM_CONFIG_HOME": "/tmp/ks-helm-config",
        }
        proc = subprocess.run(
            [tool, *args], capture_output=True, text=True, timeout=timeout, env=env, input=input, cwd=ROOT
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
        return proc

    def kubectl(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("kubectl", *args, **kw)

    def helm(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("helm", *args, **kw)

    def get(self, *args: str, namespace: str | None = None) -> dict:
        ns = ("-n", namespace) if namespace else ()
        return json.loads(self.kubectl("get", *args, *ns, "-o", "json").stdout)

    def pods(self, namespace: str, selector: str) -> list[dict]:
        return self.get("pods", "-l", selector, namespace=namespace)["items"]

    def raw(self, path: str) -> str:
        return self.kubectl("get", "--raw", path).stdout


@contextlib.contextmanager
def release_namespace(cluster: Cluster, prefix: str, release: str):
    """A fresh namespace for one test's release; afterwards the release is uninstalled (waiting
    for its pods) and the namespace deleted."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        if cluster.helm("status", release, "-n", name, check=False).returncode == 0:
            cluster.helm("uninstall", release, "-n", name, "--wait", "--timeout", "3m", check=False)
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def wait_until(what: str, condition, timeout: float, interval: float = 1.0):
    """Poll `condition()` until it returns a truthy value (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (AssertionError, subprocess.SubprocessError, json.JSONDecodeError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def prometheus_counter(text: str, name: str, **labels: str) -> float:
    """Sum of a counter's samples in Prometheus text whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{key}="{val}"' in head for key, val in labels.items()):
            total += float(value)
    return total
