"""values.schema.json rejects bad values with a readable message, and the generated docs
(docs/parameters.md, schema) are never stale."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest
import yaml
from chart_render import ROOT, render, render_error

BAD_VALUES = [
    pytest.param(
        ["--set", "gateway.replicas=3"], "additional properties 'replicas' not allowed", id="unknown key"
    ),
    pytest.param(
        ["--set", "modelServer.replicaCount=-1"],
        "/modelServer/replicaCount': minimum",
        id="negative replicas",
    ),
    pytest.param(
        ["--set-string", "modelServer.gpu.count=2"],
        "/modelServer/gpu/count': got string, want integer",
        id="GPU count as a string",
    ),
    pytest.param(
        ["--set", "global.model.source.type=s3"],
        "/global/model/source/type': value must be one of 'image', 'url', 'pvc'",
        id="unknown model source type",
    ),
    pytest.param(
        [
            "--set",
            "global.model.source.type=url",
            "--set",
            "global.model.source.url.url=https://models.example.com/m.tar.gz",
        ],
        "/global/model/source/url/sha256': '' does not match pattern",
        id="url source without sha256",
    ),
    pytest.param(
        ["--set", "global.model.source.type=url", "--set", "global.model.source.url.sha256=" + "a" * 64],
        "/global/model/source/url/url': minLength: got 0, want 1",
        id="url source without url",
    ),
    pytest.param(
        ["--set", "global.model.source.url.url=ftp://example.com/m.tar.gz"],
        "/global/model/source/url/url': '",
        id="url that is not http(s)",
    ),
    pytest.param(
        ["--set", "global.model.preprocessing=mobilenet"],
        "/global/model/preprocessing': value must be one of",
        id="unknown preprocessing",
    ),
    pytest.param(
        ["--set", "gateway.image.digest=latest"], "/gateway/image/digest'", id="digest that is not sha256"
    ),
    pytest.param(
        ["--set", "gateway.autoscaling.targetCPUUtilizationPercentage=150"],
        "maximum: got 150, want 100",
        id="CPU target above 100 %",
    ),
    pytest.param(
        ["--set", "modelServer.extraArgs[0]=rm"],
        "/modelServer/extraArgs/0'",
        id="extra arg that is not a flag",
    ),
    pytest.param(
        ["--set", "globl.model.version=2"],
        "additional properties 'globl' not allowed",
        id="misspelled top-level key",
    ),
    pytest.param(
        ["--set-json", "gateway.config.fetchAllowedPorts=[]"],
        "/gateway/config/fetchAllowedPorts': minItems: got 0, want 1",
        id="no fetch port",
    ),
    pytest.param(
        ["--set", "gateway.config.fetchAllowedPorts={443,70000}"],
        "/gateway/config/fetchAllowedPorts/1': maximum",
        id="fetch port above 65535",
    ),
    pytest.param(
        ["--set", "gateway.config.shutdownGraceSeconds=-1"],
        "/gateway/config/shutdownGraceSeconds': minimum",
        id="negative shutdown grace",
    ),
    # `tag: 2.20` in a values file is the number 2.2: a tag must be written as a string.
    pytest.param(
        ["--set-json", "modelServer.image.tag=2.20"],
        "/modelServer/image/tag': got number, want string",
        id="image tag as a number",
    ),
    pytest.param(
        ["--set-json", "global.loaderImage.tag=1"],
        "/global/loaderImage/tag': got number, want string",
        id="loader tag as a number",
    ),
    pytest.param(
        ["--set", "modelServer.resources.limits.memory=2 Gi"],
        "/modelServer/resources/limits/memory'",
        id="memory that is not a Kubernetes quantity",
    ),
    pytest.param(
        ["--set", "gateway.resources.requests.cpu=lots"],
        "/gateway/resources/requests/cpu'",
        id="cpu that is not a Kubernetes quantity",
    ),
    pytest.param(
        ["--set", "global.model.source.sizeLimit=2GB"],
        "/global/model/source/sizeLimit'",
        id="size in units Kubernetes does not know",
    ),
    pytest.param(
        ["--set-json", 'global.imagePullSecrets=[{"nam": "x"}]'],
        "/global/imagePullSecrets/0'",
        id="pull secret reference without a name",
    ),
    pytest.param(
        ["--set", "global.clusterDomain=Cluster.Local"],
        "/global/clusterDomain'",
        id="cluster domain that is not a DNS name",
    ),
]

PARAMETERS = ROOT / "docs" / "parameters.md"  # make docs writes the table here


@pytest.mark.parametrize(("args", "message"), BAD_VALUES)
def test_bad_values_fail_with_a_readable_message(args, message):
    stderr = render_error(*args)
    assert "values don't meet the specifications of the schema" in stderr
    assert message in stderr, stderr


def test_url_source_with_url_and_sha256_is_accepted():
    objects = render(
        sets={
            "global.model.source.type": "url",
            "global.model.source.url.url": "https://models.example.com/m.tar.gz",
            "global.model.source.url.sha256": "b" * 64,
        }
    )
    assert any(o["kind"] == "Deployment" for o in objects)


def test_resources_accept_extended_resources_and_percent_pdb():
    objects = render(
        sets={"modelServer.resources.limits.ephemeral-storage": "1Gi", "gateway.pdb.maxUnavailable": "50%"}
    )
    assert any(o["kind"] == "PodDisruptionBudget" for o in objects)


@pytest.mark.parametrize("secrets", [["regcred"], [{"name": "regcred"}]], ids=["names", "references"])
def test_image_pull_secrets_are_names_or_references(secrets):
    import json

    objects = render(extra=("--set-json", f"global.imagePullSecrets={json.dumps(secrets)}"))
    pods = [o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Deployment"]
    pods += [o["spec"] for o in objects if o["kind"] == "Pod"]
    assert pods and all(spec["imagePullSecrets"] == [{"name": "regcred"}] for spec in pods)


def test_security_contexts_accept_every_kubernetes_field():
    objects = render(
        extra=(
            "--set-json",
            "global.podSecurityContext.supplementalGroups=[2000]",
            "--set-json",
            'global.containerSecurityContext.appArmorProfile={"type": "RuntimeDefault"}',
            "--set",
            "global.podSecurityContext.fsGroupChangePolicy=OnRootMismatch",
        )
    )
    spec = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert spec["securityContext"]["supplementalGroups"] == [2000]
    assert spec["containers"][0]["securityContext"]["appArmorProfile"] == {"type": "RuntimeDefault"}


def test_image_tags_written_as_strings_are_kept_exactly():
    objects = render(extra=("--set-json", 'modelServer.image.tag="2.20"'))
    server = next(o for o in objects if o["kind"] == "Deployment" and "model-server" in o["metadata"]["name"])
    assert server["spec"]["template"]["spec"]["containers"][0]["image"] == "tensorflow/serving:2.20"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> pathlib.Path:
    """scripts/values-docs.sh run on copies of docs/parameters.md and the schema."""
    work = tmp_path_factory.mktemp("docs")
    shutil.copy(PARAMETERS, work / "parameters.md")
    subprocess.run(
        [
            str(ROOT / "scripts" / "values-docs.sh"),
            str(work / "parameters.md"),
            str(work / "values.schema.json"),
        ],
        cwd=ROOT,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    return work


def parameters_section(readme: str) -> str:
    return readme[readme.index("\n## Parameters") :]


def test_parameter_table_is_not_stale(regenerated):
    committed = PARAMETERS.read_text()
    fresh = (regenerated / "parameters.md").read_text()
    assert "| `global.model.version`" in fresh
    assert parameters_section(fresh) == parameters_section(committed), "run `make docs`"


def test_values_schema_is_not_stale(regenerated):
    fresh = (regenerated / "values.schema.json").read_text()
    assert fresh == (ROOT / "values.schema.json").read_text(), "run `make docs`"


def test_every_value_is_documented_in_the_parameter_table():
    values = yaml.safe_load((ROOT / "values.yaml").read_text())
    table = parameters_section(PARAMETERS.read_text())

    def leaves(node, prefix=""):
        if isinstance(node, dict) and node:
            for key, child in node.items():
                yield from leaves(child, f"{prefix}.{key}" if prefix else key)
        else:
            yield prefix

    undocumented = [
        key
        for key in leaves(values)
        if f"`{key}`" not in table and not any(f"`{p}`" in table for p in _parents(key))
    ]
    assert not undocumented


def _parents(key: str):
    parts = key.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]
