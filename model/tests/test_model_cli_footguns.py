"""The model tooling's command lines where a newcomer used to trip: `model train` without the
dataset (was a raw traceback) or over the committed demo model (was silently overwritten), `model
serve` on a wrong base path (waited forever after one warning) and binding every address."""

from __future__ import annotations

import pathlib
import socket
import subprocess
import sys
import time

from support.net import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _model(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "model_tools", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_train_without_the_dataset_says_where_to_get_it(tmp_path):
    proc = _model("train", "--dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert (
        "no dataset at" in proc.stderr
        and "git clone https://github.com/alexeygrigorev/clothing-dataset-small" in proc.stderr
    )
    assert not (tmp_path / "out").exists()


def test_train_never_replaces_a_model_without_force_and_defaults_away_from_the_demo(tmp_path):
    dataset = tmp_path / "data"
    for split in ("train", "validation", "test"):
        (dataset / split / "hat").mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "clothing-model.keras").write_bytes(b"precious")
    proc = _model("train", "--dataset", str(dataset), "--out", str(out))
    assert proc.returncode == 2
    assert "exists: pass --force" in proc.stderr
    assert (out / "clothing-model.keras").read_bytes() == b"precious"
    # With no --out, training writes to build/train, never over model/demo.
    help_text = _model("train", "--help").stdout
    assert "default build/train" in help_text


def test_serve_on_a_wrong_base_path_says_the_layout_and_exits(tmp_path):
    wrong = tmp_path / "models"  # holds clothing-model/1/, but this names the parent
    (wrong / "clothing-model" / "1").mkdir(parents=True)
    started = time.monotonic()
    proc = _model(
        "serve",
        "--port=0",
        "--rest_api_port=0",
        "--model_name=clothing-model",
        f"--model_base_path={wrong}",
        timeout=60,
    )
    assert proc.returncode == 2
    assert time.monotonic() - started < 30
    assert f"expected {wrong}/<version>/saved_model.pb" in proc.stderr
    assert "--wait_for_models" in proc.stderr


def _reachable(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: picks the outbound interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_serve_binds_loopback_unless_told(converted):
    address = _non_loopback_address()
    assert address, "this test needs a non-loopback IPv4 address on the machine"
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "model_tools",
            "serve",
            f"--port={port}",
            "--rest_api_port=0",
            "--model_name=tiny",
            f"--model_base_path={converted['base'] / 'tiny'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _reachable("127.0.0.1", port):
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
            time.sleep(0.3)
        assert not _reachable(address, port)
    finally:
        process.terminate()
        process.wait(30)
