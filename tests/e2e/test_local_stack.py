"""`make demo`, `make up` / `make down` and Ctrl-C, run as a user runs them: real processes
(model serve, the gateway, a sample server), real ports, and nothing left behind afterwards.

Ports are chosen free for each test and passed through the variables scripts/stack.sh reads, so a
developer's own `make up` on the default ports does not collide with the tests."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

from support.net import free_port
from support.phone_photos import STORED_AS, phone_photo, upright_pixels

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVICES = ("model-server", "samples", "gateway")
REPORT = json.loads((ROOT / "model" / "demo" / "training-report.json").read_text())
DEMO_IMAGE = REPORT["demo_image"]
DEMO_CLASS = REPORT["samples"][DEMO_IMAGE]["true"]
LABELS = (ROOT / "model" / "demo" / "labels.txt").read_text().split()


@pytest.fixture
def stack_env(tmp_path):
    """Free ports and a private pid/log folder: a developer's own `make up` is left alone."""
    ports = {name: free_port() for name in ("GATEWAY_PORT", "GRPC_PORT", "REST_PORT", "SAMPLES_PORT")}
    run_dir = tmp_path / "stack"
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "STACK_DIR": str(run_dir),
        "DEMO_DIR": str(tmp_path / "demo"),
    }
    yield env, ports, run_dir
    # Whatever happened in the test, leave no stack running (make up's, and make demo's).
    subprocess.run(["make", "-s", "down"], cwd=ROOT, env=env, timeout=120, check=False)
    subprocess.run(
        ["make", "-s", "down"], cwd=ROOT, env={**env, "STACK_DIR": env["DEMO_DIR"]}, timeout=120, check=False
    )


def recorded_pids(run_dir: pathlib.Path) -> dict[str, int]:
    return {
        svc: int((run_dir / f"{svc}.pid").read_text())
        for svc in SERVICES
        if (run_dir / f"{svc}.pid").exists()
    }


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def assert_nothing_left(pids: dict[str, int], ports: dict[str, int]) -> None:
    deadline = time.monotonic() + 20  # bounds the wait for the kernel to reap
    while time.monotonic() < deadline:
        alive = {svc: pid for svc, pid in pids.items() if pathlib.Path(f"/proc/{pid}").exists()}
        busy = {name: port for name, port in ports.items() if listening(port)}
        if not alive and not busy:
            return
        time.sleep(0.5)
    raise AssertionError(f"left behind: processes {alive}, listening ports {busy}")


def scores_from(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert len(lines) == 1, f"expected one JSON line in the output:\n{output}"
    return json.loads(lines[0])


def test_make_demo_prints_ten_scores_with_the_right_top_class_and_stops_everything(stack_env):
    env, ports, run_dir = stack_env
    proc = subprocess.run(["make", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    scores = scores_from(proc.stdout)
    assert list(scores) == LABELS
    assert all(isinstance(v, float) for v in scores.values())
    assert max(scores, key=scores.get) == DEMO_CLASS
    assert f"top class: {DEMO_CLASS}" in proc.stdout
    assert not recorded_pids(pathlib.Path(env["DEMO_DIR"])), "make demo left pid files behind"
    assert_nothing_left({}, ports)
    assert_readme_quick_start_matches(proc.stdout, ports)


def readme_quick_start() -> list[str]:
    """The lines of the README's Quick start output block (the ``` block after step 4)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Quick start") :]
    block = section[section.index("4. Sends") :]
    block = block[block.index("```") + 3 :]
    return [line.strip() for line in block[: block.index("```")].strip().splitlines()]


def assert_readme_quick_start_matches(output: str, ports: dict) -> None:
    """The README shows what `make demo` prints: the same sample file, top class (and score),
    accuracy, and scores within printing noise. The run used free ports; the README the defaults."""
    ran = [
        line.strip()
        for line in output.splitlines()
        if line.startswith(("==> curl", "==> top class", "==> the demo", "{"))
    ]
    ran = [
        line.replace(f"localhost:{ports['GATEWAY_PORT']}", "localhost:9696").replace(
            f"127.0.0.1:{ports['SAMPLES_PORT']}", "127.0.0.1:8088"
        )
        for line in ran
    ]
    shown = readme_quick_start()
    assert len(shown) == len(ran) == 4, (shown, ran)
    assert shown[0] == ran[0], "README Quick start: the curl line (sample file) differs from make demo's"
    assert shown[2] == ran[2], "README Quick start: the top class line differs from make demo's"
    assert shown[3] == ran[3], "README Quick start: the accuracy line differs from make demo's"
    readme_scores, run_scores = json.loads(shown[1]), json.loads(ran[1])
    assert list(readme_scores) == list(run_scores)
    assert all(abs(readme_scores[k] - run_scores[k]) < 0.01 for k in run_scores), (readme_scores, run_scores)


def test_make_up_serves_curl_until_make_down_stops_every_process(stack_env):
    env, ports, run_dir = stack_env
    up = subprocess.run(["make", "up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    pids = recorded_pids(run_dir)
    assert set(pids) == set(SERVICES)

    url = f"http://127.0.0.1:{ports['SAMPLES_PORT']}/{DEMO_IMAGE}"
    curl = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "60",
            "-X",
            "POST",
            f"localhost:{ports['GATEWAY_PORT']}/predict",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps({"url": url}),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    scores = json.loads(curl.stdout)
    assert max(scores, key=scores.get) == DEMO_CLASS
    # The demo photo as a phone stores it, with each EXIF orientation, uploaded and sent as
    # base64: the model still names the same class.
    upright = upright_pixels(ROOT / "samples" / "images" / DEMO_IMAGE)
    for orientation in STORED_AS:
        photo = phone_photo(upright, orientation)
        gateway = f"http://127.0.0.1:{ports['GATEWAY_PORT']}/predict"
        uploaded = requests.post(gateway, files={"image": ("phone.jpg", photo, "image/jpeg")}, timeout=60)
        sent = requests.post(gateway, json={"image": base64.b64encode(photo).decode()}, timeout=60)
        for response in (uploaded, sent):
            assert response.status_code == 200, response.text
            assert max(response.json(), key=response.json().get) == DEMO_CLASS, (orientation, response.json())
    # A second `make up` must refuse rather than start a second stack.
    again = subprocess.run(["make", "up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "already running" in again.stderr

    down = subprocess.run(["make", "down"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert_nothing_left(pids, ports)
    assert not recorded_pids(run_dir)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{ports['GATEWAY_PORT']}/healthz", timeout=5)


def test_ctrl_c_during_make_demo_leaves_nothing_behind(stack_env):
    env, ports, _ = stack_env
    run_dir = pathlib.Path(env["DEMO_DIR"])
    demo = subprocess.Popen(
        ["make", "demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # A terminal's shell starts `make demo` with Ctrl-C at its default action; a test run
        # launched as a background job (nohup, `&` in a script) inherits SIGINT ignored, which
        # make and bash then keep ignoring (bash cannot even trap it).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # Interrupt once all three processes run (the stack is starting or answering).
        deadline = time.monotonic() + 300
        while len(recorded_pids(run_dir)) < len(SERVICES):
            assert demo.poll() is None, f"make demo ended before the stack started:\n{demo.stdout.read()}"
            assert time.monotonic() < deadline, "the stack's processes did not start within 300 s"
            time.sleep(0.2)
        pids = recorded_pids(run_dir)
        os.killpg(demo.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        output, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=30)
    assert demo.returncode != 0, output
    assert_nothing_left(pids, ports)
    assert not recorded_pids(run_dir), output


def test_make_demo_leaves_a_running_make_up_alone_and_says_why(stack_env):
    """The old footgun: `make demo` during `make up` printed "already running" and then stopped
    the user's stack. Now it refuses, and the stack keeps serving."""
    env, ports, run_dir = stack_env
    up = subprocess.run(["make", "up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    pids = recorded_pids(run_dir)
    demo = subprocess.run(["make", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode != 0
    assert f"port {ports['GATEWAY_PORT']} is in use" in demo.stderr or "is in use" in demo.stderr, demo.stderr
    assert recorded_pids(run_dir) == pids
    assert all(pathlib.Path(f"/proc/{pid}").exists() for pid in pids.values())
    assert requests.get(f"http://127.0.0.1:{ports['GATEWAY_PORT']}/readyz", timeout=10).status_code == 200


def test_make_up_with_your_model_leaves_the_demo_state_alone_and_logs_are_per_run(stack_env, tmp_path):
    """`make up MODEL=...` serves another model under its own name (converted into make up's
    state folder); `make demo` still serves the demo model; each run's log holds that run only."""
    env, ports, run_dir = stack_env
    mine = tmp_path / "mine.keras"
    mine.write_bytes((ROOT / "model" / "demo" / "clothing-model.keras").read_bytes())
    custom = {**env, "MODEL_NAME": "my-model"}
    for _ in range(2):
        up = subprocess.run(
            ["make", "up", f"MODEL={mine}", f"LABELS={ROOT / 'model' / 'demo' / 'labels.txt'}"],
            cwd=ROOT,
            env=custom,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        status = requests.get(f"http://127.0.0.1:{ports['REST_PORT']}/v1/models/my-model", timeout=10).json()
        assert status["model_version_status"][0]["state"] == "AVAILABLE", status
        assert (run_dir / "models" / "my-model" / "1" / "saved_model.pb").is_file()
        down = subprocess.run(
            ["make", "down"], cwd=ROOT, env=custom, capture_output=True, text=True, timeout=120
        )
        assert down.returncode == 0, down.stderr
    log = (run_dir / "gateway.log").read_text()
    assert log.count("gateway listening") == 1, "the log should hold the last run only"
    demo = subprocess.run(
        ["make", "demo"],
        cwd=ROOT,
        env={**env, "MODEL": str(mine), "MODEL_NAME": "my-model"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert f"top class: {DEMO_CLASS}" in demo.stdout
    assert not (pathlib.Path(env["DEMO_DIR"]) / "models" / "my-model").exists()


def test_make_reset_stops_the_stacks_and_removes_their_state(tmp_path):
    """`make reset` on a copy of the repository's .run layout (the real one may be a developer's)."""
    work = tmp_path / "repo"
    for path in ("Makefile", "scripts"):
        src = ROOT / path
        if src.is_dir():
            shutil.copytree(src, work / path, symlinks=True)
        else:
            work.mkdir(parents=True, exist_ok=True)
            (work / path).write_bytes(src.read_bytes())
    for state in ("stack", "demo", "models/clothing-model/1", "registry/data", "release"):
        (work / ".run" / state).mkdir(parents=True)
    (work / ".run" / "release" / "cosign.key").write_text("keep me")
    proc = subprocess.run(["make", "-s", "reset"], cwd=work, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (work / ".run").iterdir()) == ["release"]
    assert (work / ".run" / "release" / "cosign.key").read_text() == "keep me"
