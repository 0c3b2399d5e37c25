"""The two scripts the container tier stands on: the engine starter is idempotent and the local
base image is what every Dockerfile expects of python:3.11-slim (python3 3.11 with a working
venv + pip, reachable PyPI through the host's CAs), without Docker Hub."""

from __future__ import annotations

import subprocess

from docker_tools import ROOT, docker


def test_engine_start_is_idempotent_and_status_answers(docker_engine):
    again = subprocess.run(
        [str(ROOT / "scripts" / "docker-engine.sh"), "start"], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0 and again.stdout.strip() == "running", again.stderr
    status = subprocess.run([str(ROOT / "scripts" / "docker-engine.sh"), "status"], timeout=60)
    assert status.returncode == 0


def test_base_image_is_cached_and_has_python_311_with_venv(base_image):
    before = docker("image", "inspect", "-f", "{{.Id}}", base_image).stdout.strip()
    out = subprocess.run(
        [str(ROOT / "scripts" / "base-image.sh"), base_image], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == base_image
    assert docker("image", "inspect", "-f", "{{.Id}}", base_image).stdout.strip() == before, (
        "an existing base image must not be rebuilt"
    )
    probe = docker(
        "run",
        "--rm",
        base_image,
        "sh",
        "-c",
        "python3 -c 'import sys; print(sys.version_info[:2])' && python3 -m venv /tmp/v "
        "&& /tmp/v/bin/pip --version >/dev/null && echo venv-ok",
    )
    assert probe.stdout.split("\n")[:2] == ["(3, 11)", "venv-ok"], probe.stdout
