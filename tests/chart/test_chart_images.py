"""Where the chart's images come from: nothing is pulled by default from a namespace whose tags
the chart cannot vouch for. The keras-serving images (bare repository names) resolve to the
project's registry by digest only; a registry the user names takes tags; a full reference is used
as written."""

from __future__ import annotations

import re

import pytest
import yaml
from chart_render import GATEWAY, MODEL_SERVER, ROOT, container, find, pod_spec, render, run_helm

DIGEST = "sha256:" + "d" * 64
OURS = {  # keras-serving image -> its values path
    "gateway": "gateway.image",
    "clothing-model": "global.model.source.image",
    "model-loader": "global.loaderImage",
}


def _defaults_render(*args: str):
    return run_helm("template", "serving", ".", *args, check=False, registry=False)


def _images(rendered: str) -> set[str]:
    """Every container and init container image of the rendered Deployments."""
    return {
        c["image"]
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"].get("initContainers", [])
        + d["spec"]["template"]["spec"]["containers"]
    }


def test_source_tree_defaults_refuse_to_render_and_say_what_to_set():
    proc = _defaults_render()
    assert proc.returncode != 0
    assert "is a keras-serving image, which resolves to ghcr.io/keras-serving/" in proc.stderr
    assert "set global.imageRegistry" in proc.stderr


@pytest.mark.parametrize("path", ["gateway.image", "global.model.source.image"])
def test_every_keras_serving_image_without_a_digest_is_refused_by_name(path):
    """With every other keras-serving image pinned, the one left names itself and its value."""
    sets = [arg for other in OURS.values() if other != path for arg in ("--set", f"{other}.digest={DIGEST}")]
    proc = _defaults_render(*sets)
    assert proc.returncode != 0
    assert f"set {path}.digest" in proc.stderr


def test_the_released_chart_values_render_pinned_references_in_the_project_registry():
    """What the release writes: digests, no registry value: every image is registry@digest."""
    sets = [arg for path in OURS.values() for arg in ("--set", f"{path}.digest={DIGEST}")]
    proc = _defaults_render(
        *sets,
        "--set",
        "global.model.source.type=url",
        "--set",
        "global.model.source.url.url=https://models.example.com/m.tar.gz",
        "--set",
        "global.model.source.url.sha256=" + "a" * 64,
    )
    assert proc.returncode == 0, proc.stderr
    images = _images(proc.stdout)
    assert f"ghcr.io/keras-serving/gateway@{DIGEST}" in images
    assert f"ghcr.io/keras-serving/model-loader@{DIGEST}" in images
    ours = {i for i in images if "keras-serving" in i}
    assert all("@sha256:" in i for i in ours), ours


def test_a_named_registry_prefixes_only_bare_names_and_takes_tags():
    objects = render(sets={"global.imageRegistry": "registry.internal:5000/ml/"})
    gateway = find(objects, "Deployment", GATEWAY)
    model_server = find(objects, "Deployment", MODEL_SERVER)
    assert container(gateway, "gateway")["image"] == "registry.internal:5000/ml/gateway:0.1.0"
    assert (
        pod_spec(model_server)["initContainers"][0]["image"] == "registry.internal:5000/ml/clothing-model:1"
    )
    # tensorflow/serving names its namespace: used as written, not moved under our registry.
    assert container(model_server, "model-server")["image"].startswith("tensorflow/serving:")


def test_a_full_reference_is_used_as_written_even_without_a_registry_value():
    proc = _defaults_render(
        "--set",
        "gateway.image.repository=acme/gateway",
        "--set",
        "global.model.source.image.repository=registry.example.com/team/model",
    )
    assert proc.returncode == 0, proc.stderr
    images = _images(proc.stdout)
    assert {"acme/gateway:0.1.0", "registry.example.com/team/model:1"} <= images


def test_the_documented_default_registry_is_the_one_rendered():
    """values.yaml (and so the README table) names the registry an empty value means."""
    values = (ROOT / "values.yaml").read_text()
    assert yaml.safe_load(values)["global"]["imageRegistry"] == ""
    documented = re.search(r"@param global.imageRegistry .*?empty = `([^`]+)`", values).group(1)
    proc = _defaults_render(
        "--set", f"gateway.image.digest={DIGEST}", "--set", f"global.model.source.image.digest={DIGEST}"
    )
    assert f"{documented}/gateway@{DIGEST}" in proc.stdout


@pytest.mark.parametrize(
    "values",
    ["deploy/eks/values.yaml", "tests/cluster/cluster-values.yaml", "tests/containers/podman-values.yaml"],
)
def test_shipped_values_files_render_on_their_own(values):
    """The EKS guide's values and the test tiers' values name their registry themselves (the
    EKS file once, for all three keras-serving images) and pass the schema."""
    proc = _defaults_render("-f", str(ROOT / values))
    assert proc.returncode == 0, proc.stderr
    images = _images(proc.stdout)
    assert images and not any(i.startswith("ghcr.io/keras-serving/") for i in images), images
