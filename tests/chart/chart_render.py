"""Render the chart with the real helm binary and look rendered objects up (chart tier).

pytest-helm is installed but not used: its `manifest_fixture` binds one fixed helm command to a
session fixture, while these tests render dozens of value combinations (and need the raw
document list for Kubernetes schema validation), so a small cached subprocess helper is clearer.
"""

from __future__ import annotations

import functools
import pathlib
import shutil
import subprocess

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "ci").glob("*-values.yaml"))
# Names the registry the keras-serving images were pushed to; put before every values file of a
# chart render (the source tree's defaults refuse to resolve them without it or a digest).
REGISTRY_VALUES = pathlib.Path(__file__).with_name("registry-values.yaml")
REGISTRY = yaml.safe_load(REGISTRY_VALUES.read_text())["global"]["imageRegistry"]
RENDERING = {"template", "install", "upgrade", "lint"}
RELEASE = "serving"
NAMESPACE = "ml"


def helm_binary() -> str:
    found = shutil.which("helm")
    if not found:
        raise RuntimeError("helm is not on PATH: run `make tools`")
    return found


def run_helm(
    *args: str, cwd: pathlib.Path = ROOT, check: bool = True, registry: bool = True
) -> subprocess.CompletedProcess:
    """helm <args>; a render (template/install/upgrade/lint) gets REGISTRY_VALUES first unless
    registry=False, so later values files and --set still override it."""
    if registry and args and args[0] in RENDERING:
        args = (args[0], "--values", str(REGISTRY_VALUES), *args[1:])  # first: every later file wins
    proc = subprocess.run([helm_binary(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return proc


@functools.cache
def _render(values_files: tuple[str, ...], sets: tuple[str, ...], extra: tuple[str, ...]) -> tuple[dict, ...]:
    args = ["template", RELEASE, ".", "--namespace", NAMESPACE]
    for path in values_files:
        args += ["--values", path]
    for item in sets:
        args += ["--set", item]
    proc = run_helm(*args, *extra)
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def render(*values_files, sets: dict | None = None, extra: tuple[str, ...] = ()) -> list[dict]:
    """Rendered objects of the chart (release "serving", namespace "ml")."""
    set_args = tuple(f"{key}={value}" for key, value in (sets or {}).items())
    files = tuple(str(pathlib.Path(f).resolve()) for f in values_files)
    return [yaml.safe_load(yaml.safe_dump(doc)) for doc in _render(files, set_args, extra)]


def render_error(*args: str) -> str:
    """stderr of a `helm template` that must fail."""
    proc = run_helm("template", RELEASE, ".", *args, check=False)
    assert proc.returncode != 0, f"helm template {' '.join(args)} unexpectedly succeeded"
    return proc.stderr


def find(objects: list[dict], kind: str, name: str) -> dict:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    present = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    raise AssertionError(f"{kind}/{name} not rendered; rendered: {present}")


def kinds(objects: list[dict]) -> set[str]:
    return {f"{o['kind']}/{o['metadata']['name']}" for o in objects}


def pod_spec(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def container(deployment: dict, name: str) -> dict:
    for c in pod_spec(deployment)["containers"]:
        if c["name"] == name:
            return c
    raise AssertionError(f"no container {name} in {deployment['metadata']['name']}")


def container_environment(objects: list[dict], deployment: dict, name: str) -> dict[str, str]:
    """The environment the container starts with: its envFrom ConfigMaps in order (a later
    source wins, as in Kubernetes), then its env entries with a literal value."""
    spec = container(deployment, name)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        env.update(find(objects, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
    env.update({e["name"]: e["value"] for e in spec.get("env", []) if "value" in e})
    return env


GATEWAY = f"{RELEASE}-gateway"
MODEL_SERVER = f"{RELEASE}-model-server"


def scenario_id(path: pathlib.Path) -> str:
    return path.name.removesuffix("-values.yaml")
