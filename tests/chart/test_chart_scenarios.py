"""Every ci/ scenario lints strictly and renders objects valid for the oldest and newest
supported Kubernetes (kubernetes-validate, offline schemas, strict)."""

from __future__ import annotations

import kubernetes_validate
import pytest
from chart_render import ROOT, SCENARIOS, render, run_helm, scenario_id

KUBERNETES_VERSIONS = ("1.29.0", "1.35.0")
REQUIRED_SCENARIOS = {
    "defaults",
    "gpu",
    "existing-pvc",
    "url-download",
    "model-image",
    "autoscaling",
    "ingress-tls",
    "networkpolicy",
    "five-gateways-two-model-servers",
}


def test_ci_folder_holds_every_required_scenario_numbered():
    names = {scenario_id(p).split("-", 1)[1] for p in SCENARIOS}
    assert names >= REQUIRED_SCENARIOS
    assert all(scenario_id(p)[:2].isdigit() for p in SCENARIOS)


def test_chart_lints_strictly_with_defaults():
    proc = run_helm("lint", "--strict", ".")
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_id)
def test_scenario_lints_strictly(scenario):
    proc = run_helm("lint", "--strict", ".", "--values", str(scenario))
    assert "0 chart(s) failed" in proc.stdout, proc.stdout


@pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_id)
def test_scenario_renders_objects_valid_for_kubernetes(scenario, kube_version):
    objects = render(scenario, extra=("--kube-version", kube_version))
    assert any(o["kind"] == "Deployment" for o in objects)
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(
                f"{scenario.name}: {obj['kind']}/{obj['metadata']['name']} invalid "
                f"for Kubernetes {kube_version}: {err.message} at {list(err.path)}"
            )


def test_image_volume_renders_valid_for_kubernetes_1_35():
    objects = render(
        ROOT / "ci" / "05-model-image-values.yaml",
        sets={"global.model.source.image.useImageVolume": "true"},
        extra=("--kube-version", "1.35.0"),
    )
    volumes = [
        v
        for o in objects
        if o["kind"] == "Deployment"
        for v in o["spec"]["template"]["spec"]["volumes"]
        if "image" in v
    ]
    assert volumes, "the opt-in OCI image volume is not rendered on Kubernetes 1.35"
    for obj in objects:
        kubernetes_validate.validate(obj, "1.35.0", strict=True)
