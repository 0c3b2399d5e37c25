"""compose.yaml, run for real with docker-compose on the local engine: the gateway image and the
development model-server image (the compose.dev-server.yaml override; the official
tensorflow/serving image is not reachable from CI), built from the repo's Dockerfiles, talk over
the compose network; curl from the host through the gateway's published port gets the right class."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

from docker_tools import ROOT, demo_sample, docker, predict_base64, wait_http

from support.net import free_port

COMPOSE = ["docker-compose", "-f", str(ROOT / "compose.yaml"), "-f", str(ROOT / "compose.dev-server.yaml")]


def compose(project: str, env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMPOSE, "-p", project, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_compose_files_are_valid_for_both_model_servers(docker_engine):
    for files in (["-f", str(ROOT / "compose.yaml")], COMPOSE[1:]):
        proc = subprocess.run(
            ["docker-compose", *files, "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr


def test_compose_stack_classifies_the_demo_sample(gateway_image, model_server_image, demo_model_base):
    project = f"ks{uuid.uuid4().hex[:8]}"
    gateway_port = free_port()
    env = {
        **os.environ,
        "GATEWAY_IMAGE": gateway_image,
        "MODEL_SERVER_DEV_IMAGE": model_server_image,
        "MODEL_BASE_PATH": str(demo_model_base),
        "GATEWAY_PORT": str(gateway_port),
        "GRPC_PORT": str(free_port()),
        "REST_PORT": str(free_port()),
    }
    try:
        # --no-build: the images under test are the ones just built on the local base image.
        up = compose(project, env, "up", "-d", "--no-build")
        assert up.returncode == 0, up.stderr[-4000:]
        wait_http(f"http://127.0.0.1:{gateway_port}/readyz", timeout=180)
        image, expected = demo_sample()
        scores = predict_base64(f"http://127.0.0.1:{gateway_port}", image)
        assert len(scores) == 10
        assert max(scores, key=scores.get) == expected, scores
        # The healthchecks compose.yaml declares pass in both containers (bounded wait: the
        # gateway's first check runs one interval after it started).
        for service in ("gateway", "model-server"):
            cid = compose(project, env, "ps", "-q", service).stdout.strip()
            deadline = time.monotonic() + 60
            while (
                health := docker("inspect", "-f", "{{.State.Health.Status}}", cid).stdout.strip()
            ) != "healthy":
                assert health == "starting" and time.monotonic() < deadline, f"{service}: {health}"
                time.sleep(1)
    except AssertionError:
        print(compose(project, env, "logs", "--tail=60").stdout)
        raise
    finally:
        compose(project, env, "down", "-v", "--remove-orphans", timeout=180)
    left = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
    assert not left, f"compose left containers behind: {left}"
