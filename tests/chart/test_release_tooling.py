"""The release pipeline's static parts: the GitHub workflows (actionlint, and every command they
run is a make target the tests run), the chart pinning script and make release's refusals. The
release itself runs against a real registry in tests/containers/test_release.py."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from chart_render import ROOT, run_helm

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
DIGEST = "sha256:" + "e" * 64


def test_workflows_exist_and_pass_actionlint():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "release.yml"}
    actionlint = shutil.which("actionlint")
    assert actionlint, "actionlint is not on PATH: run `make tools`"
    proc = subprocess.run(
        [actionlint, "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _run_steps(workflow: pathlib.Path) -> list[str]:
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    return [step["run"].strip() for job in jobs.values() for step in job["steps"] if "run" in step]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_command_is_a_make_target_the_tests_run(workflow):
    """The hosted workflows cannot run here, so they run nothing of their own: `make <target>`
    (release: the target tests/containers/test_release.py runs) or .ci/run (make test)."""
    make_targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    steps = _run_steps(workflow)
    assert steps
    for command in steps:
        if command.endswith("bash .ci/run"):
            assert "make test" in (ROOT / ".ci" / "run").read_text()
            continue
        words = command.split()
        assert words[0] == "make" and words[1] in make_targets, command


def test_release_workflow_signs_keyless_for_two_platforms_on_a_version_tag():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert all(tag.startswith("v") for tag in triggers["push"]["tags"])
    assert workflow["permissions"]["id-token"] == "write" and workflow["permissions"]["packages"] == "write"
    (command,) = _run_steps(ROOT / ".github" / "workflows" / "release.yml")
    assert "SIGN=keyless" in command and "PLATFORMS=linux/amd64,linux/arm64" in command
    assert "REGISTRY=ghcr.io" in command


# ---- scripts/release/pin_chart.py -----------------------------------------------------------------
@pytest.fixture()
def unpacked_chart(tmp_path) -> pathlib.Path:
    run_helm("package", ".", "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("*.tgz")
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(tmp_path)], check=True)
    return tmp_path / "keras-serving"


def _pin(chart: pathlib.Path, *digests: str) -> subprocess.CompletedProcess:
    args = [
        sys.executable,
        str(ROOT / "scripts" / "release" / "pin_chart.py"),
        str(chart),
        "--registry",
        "registry.example.com/ks",
        "--version",
        "9.8.7",
    ]
    for item in digests:
        args += ["--digest", item]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_pin_chart_writes_digests_and_registry_and_keeps_every_comment(unpacked_chart):
    before = (unpacked_chart / "values.yaml").read_text()
    proc = _pin(unpacked_chart, f"gateway={DIGEST}", f"model-loader={DIGEST}", f"clothing-model={DIGEST}")
    assert proc.returncode == 0, proc.stderr
    after = (unpacked_chart / "values.yaml").read_text()
    comments = lambda text: [line.strip() for line in text.splitlines() if line.strip().startswith("#")]  # noqa: E731
    assert comments(after) == comments(before)
    values = yaml.safe_load(after)
    assert values["global"]["imageRegistry"] == "registry.example.com/ks"
    assert values["gateway"]["image"]["digest"] == DIGEST
    assert values["global"]["loaderImage"]["digest"] == DIGEST
    assert values["global"]["model"]["source"]["image"]["digest"] == DIGEST
    # The pinned chart renders without any registry value of the tests: digests from its own values.
    rendered = run_helm("template", "s", str(unpacked_chart), registry=False).stdout
    assert f"registry.example.com/ks/gateway@{DIGEST}" in rendered


@pytest.mark.parametrize(
    "digest, message",
    [("gateway=sha256:abc", "not sha256 digests"), (f"no-such-image={DIGEST}", "no bare repository")],
)
def test_pin_chart_refuses_bad_input_and_writes_nothing(unpacked_chart, digest, message):
    before = (unpacked_chart / "values.yaml").read_bytes()
    proc = _pin(unpacked_chart, digest)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert (unpacked_chart / "values.yaml").read_bytes() == before


# ---- make release's refusals (before anything is built or pushed) ----------------------------------
@pytest.mark.parametrize(
    "setting, message",
    [("VERSION=1.2", "is not a semantic version"), ("SIGN=maybe", "use key, keyless or none")],
)
def test_release_refuses_bad_settings_before_building(setting, message):
    key, value = setting.split("=", 1)
    proc = subprocess.run(
        [str(ROOT / "scripts" / "release" / "release.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, key: value, "OUT": "/nonexistent/never-written"},
    )
    assert proc.returncode == 1
    assert message in proc.stderr
    assert not pathlib.Path("/nonexistent/never-written").exists()
