"""Helpers shared by the model-tooling tests: the tiny real Keras model and a `model serve`
subprocess on loopback ports. (A uniquely named module: every test folder of the repository
shares one pytest run and one sys.modules.)"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

from support.net import free_port
from support.tiny_model import build_tiny_classifier

TINY_SHAPE = (12, 10, 3)  # H, W, C: deliberately not square, to catch H/W swaps
TINY_LABELS = ["cat", "dog", "emu", "yak"]


def build_tiny_model(seed: int = 7):
    """A real (tiny) image classifier: conv + BatchNorm + pooling + dense logits."""
    return build_tiny_classifier(
        TINY_SHAPE, len(TINY_LABELS), filters=6, output_name="class_logits", seed=seed, batch_norm=True
    )


class ServeProcess:
    def __init__(self, *flags: str):
        self.grpc_port, self.rest_port = free_port(), free_port()
        cmd = [
            sys.executable,
            "-m",
            "model_tools",
            "serve",
            "--host=127.0.0.1",
            f"--port={self.grpc_port}",
            f"--rest_api_port={self.rest_port}",
            *flags,
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_listening(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if line.startswith("model serve: listening"):
                return line
        raise AssertionError("model serve did not start:\n" + "".join(self.output[-40:]))

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    @property
    def log(self) -> str:
        return "".join(self.output)
