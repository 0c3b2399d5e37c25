"""`make release` against a real OCI registry (distribution, on loopback): the chart is pulled
back with `helm pull oci://`, installs (dry run) from there, points at image digests that exist
in the registry, and every pushed artifact verifies with cosign — a moved tag does not."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile

import pytest
import requests
import yaml
from docker_tools import ROOT, docker

pytestmark = pytest.mark.containers

OURS = ("gateway", "model-loader", "model-server-dev", "clothing-model")


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


def _cosign_verify(oci_release, ref: str, key=None) -> subprocess.CompletedProcess:
    return _run(
        "cosign",
        "verify",
        "--key",
        str(key or oci_release.public_key),
        "--insecure-ignore-tlog",
        "--allow-http-registry",
        ref,
    )


def _manifest_digest(registry: str, name: str, reference: str) -> str | None:
    """The digest the registry serves for <name>:<reference> (HEAD, as a puller asks)."""
    accept = ", ".join(
        [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ]
    )
    response = requests.head(
        f"http://{registry}/v2/{name}/manifests/{reference}", headers={"Accept": accept}, timeout=10
    )
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


def _retag(registry: str, name: str, digest: str, tag: str) -> None:
    """Point <name>:<tag> back at the manifest <digest> (the same bytes, so the same digest)."""
    accept = (
        "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    )
    got = requests.get(
        f"http://{registry}/v2/{name}/manifests/{digest}", headers={"Accept": accept}, timeout=10
    )
    got.raise_for_status()
    put = requests.put(
        f"http://{registry}/v2/{name}/manifests/{tag}",
        data=got.content,
        headers={"Content-Type": got.headers["Content-Type"]},
        timeout=10,
    )
    assert put.status_code == 201, put.text


@pytest.fixture(scope="module")
def pulled_chart(oci_release, tmp_path_factory):
    """The chart as a user gets it: `helm pull oci://... --version` and unpacked."""
    dest = tmp_path_factory.mktemp("pulled")
    proc = _run(
        "helm",
        "pull",
        oci_release.chart,
        "--version",
        oci_release.version,
        "--plain-http",
        "--destination",
        str(dest),
    )
    assert proc.returncode == 0, proc.stderr
    (archive,) = dest.glob("keras-serving-*.tgz")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / "keras-serving"


def test_release_prints_an_install_command_that_installs_from_the_registry(oci_release):
    command = oci_release.install_command()
    assert command[:4] == ["helm", "install", "serving", oci_release.chart]
    assert f"--version {oci_release.version}" in " ".join(command)
    # helm v4: a client-side dry run renders everything and talks to no cluster.
    proc = _run(*command, "--dry-run=client")
    assert proc.returncode == 0, proc.stderr
    rendered = [
        d for d in yaml.safe_load_all(proc.stdout.split("MANIFEST:", 1)[1].split("NOTES:", 1)[0]) if d
    ]
    images = {
        c["image"]
        for d in rendered
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"].get("initContainers", [])
        + d["spec"]["template"]["spec"]["containers"]
    }
    assert oci_release.pinned("gateway") in images
    assert oci_release.pinned("clothing-model") in images


def test_packaged_chart_pins_every_keras_serving_image_to_a_digest_in_the_registry(oci_release, pulled_chart):
    values = yaml.safe_load((pulled_chart / "values.yaml").read_text())
    assert values["global"]["imageRegistry"] == oci_release.prefix
    pinned = {
        "gateway": values["gateway"]["image"],
        "model-loader": values["global"]["loaderImage"],
        "clothing-model": values["global"]["model"]["source"]["image"],
    }
    registry, namespace = oci_release.prefix.split("/", 1)
    for name, image in pinned.items():
        assert image["digest"] == oci_release.manifest["images"][name]["digest"], name
        assert _manifest_digest(registry, f"{namespace}/{name}", image["digest"]) == image["digest"], name
    # The comments `helm show values` shows survive the pinning.
    assert "## @param gateway.image.digest" in (pulled_chart / "values.yaml").read_text()
    chart = yaml.safe_load((pulled_chart / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == oci_release.version
    listed = yaml.safe_load(chart["annotations"]["artifacthub.io/images"])
    assert {i["image"] for i in listed} == {oci_release.pinned(n) for n in pinned}


def test_images_are_tagged_with_the_app_and_model_versions(oci_release):
    registry, namespace = oci_release.prefix.split("/", 1)
    for name in OURS:
        tag = oci_release.manifest["images"][name]["ref"].rsplit(":", 1)[1]
        assert (
            _manifest_digest(registry, f"{namespace}/{name}", tag)
            == oci_release.manifest["images"][name]["digest"]
        )
    assert oci_release.manifest["images"]["gateway"]["ref"].endswith(f":{oci_release.version}")
    model_version = yaml.safe_load((ROOT / "values.yaml").read_text())["global"]["model"]["version"]
    assert oci_release.manifest["images"]["clothing-model"]["ref"].endswith(f":{model_version}")


@pytest.mark.parametrize("name", [*OURS, "chart"])
def test_every_pushed_artifact_verifies_with_the_release_key(oci_release, name):
    ref = (
        f"{oci_release.prefix}/charts/keras-serving@{oci_release.manifest['chart']['digest']}"
        if name == "chart"
        else oci_release.pinned(name)
    )
    proc = _cosign_verify(oci_release, ref)
    assert proc.returncode == 0, proc.stderr
    assert "The signatures were verified against the specified public key" in proc.stderr


def test_a_moved_tag_and_a_foreign_key_fail_verification(oci_release, tmp_path):
    """Tampering: the gateway's tag now points at other bytes (pushed by someone without the key),
    and a signature checked against a key that did not make it."""
    registry, namespace = oci_release.prefix.split("/", 1)
    tag_ref = oci_release.manifest["images"]["gateway"]["ref"]
    original = oci_release.manifest["images"]["gateway"]["digest"]
    docker("tag", oci_release.manifest["images"]["model-loader"]["ref"], tag_ref)
    docker("push", "-q", tag_ref)
    try:
        moved = _manifest_digest(registry, f"{namespace}/gateway", tag_ref.rsplit(":", 1)[1])
        assert moved and moved != original
        proc = _cosign_verify(oci_release, tag_ref)
        assert proc.returncode != 0
        assert "no signatures found" in proc.stderr or "no matching signatures" in proc.stderr, proc.stderr
    finally:
        _retag(registry, f"{namespace}/gateway", original, tag_ref.rsplit(":", 1)[1])
    assert _manifest_digest(registry, f"{namespace}/gateway", tag_ref.rsplit(":", 1)[1]) == original

    other = tmp_path / "other"
    proc = subprocess.run(
        ["cosign", "generate-key-pair", "--output-key-prefix", str(other)],
        capture_output=True,
        text=True,
        env={**os.environ, "COSIGN_PASSWORD": ""},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    proc = _cosign_verify(oci_release, oci_release.pinned("gateway"), key=other.with_suffix(".pub"))
    assert proc.returncode != 0
    assert "no matching signatures" in proc.stderr, proc.stderr


@pytest.mark.parametrize("name", OURS)
def test_every_image_carries_a_signed_spdx_sbom(oci_release, name):
    """The SBOM syft made of the pushed image is attached as a cosign attestation that verifies
    with the release key; the gateway's lists the Python packages it serves with."""
    proc = _run(
        "cosign",
        "verify-attestation",
        "--key",
        str(oci_release.public_key),
        "--insecure-ignore-tlog",
        "--allow-http-registry",
        "--type",
        "spdxjson",
        oci_release.pinned(name),
    )
    assert proc.returncode == 0, proc.stderr
    sbom = json.loads((oci_release.out / "sbom" / f"{name}.spdx.json").read_text())
    assert sbom["spdxVersion"].startswith("SPDX-")
    packages = {p["name"] for p in sbom["packages"]}
    if name == "gateway":
        assert {"aiohttp", "grpcio", "pillow", "ssrfguard"} <= packages, sorted(packages)[:50]


def test_a_chart_pushed_over_the_released_version_fails_verification(oci_release, pulled_chart, tmp_path):
    """Someone without the key pushes other chart bytes as the same version: helm would pull them,
    cosign refuses them."""
    registry, namespace = oci_release.prefix.split("/", 1)
    repository = f"{namespace}/charts/keras-serving"
    original = oci_release.manifest["chart"]["digest"]
    chart = shutil.copytree(pulled_chart, tmp_path / "keras-serving")
    values = chart / "values.yaml"
    values.write_text(values.read_text().replace(oci_release.prefix, "evil.example.com/keras-serving"))
    packaged = _run("helm", "package", str(chart), "--destination", str(tmp_path))
    assert packaged.returncode == 0, packaged.stderr
    pushed = _run(
        "helm",
        "push",
        str(next(tmp_path.glob("*.tgz"))),
        f"oci://{registry}/{namespace}/charts",
        "--plain-http",
    )
    assert pushed.returncode == 0, pushed.stderr
    try:
        moved = _manifest_digest(registry, repository, oci_release.version)
        assert moved and moved != original
        proc = _cosign_verify(oci_release, f"{oci_release.prefix}/charts/keras-serving:{oci_release.version}")
        assert proc.returncode != 0
        assert "no signatures found" in proc.stderr or "no matching signatures" in proc.stderr, proc.stderr
    finally:
        _retag(registry, repository, original, oci_release.version)
    assert _manifest_digest(registry, repository, oci_release.version) == original
