"""`model serve` (the project's TF-Serving-compatible dev server) as a real subprocess, plus a
tiny real Keras model converted to a SavedModel for it to serve."""

from __future__ import annotations

import pathlib

from support.model_serve import ModelServeProcess
from support.tiny_model import build_tiny_classifier

TINY_LABELS = ["cat", "dog", "emu", "yak"]
TINY_SIZE = 32


def build_tiny_keras_model(seed: int = 3):
    return build_tiny_classifier(
        (TINY_SIZE, TINY_SIZE, 3), len(TINY_LABELS), filters=4, output_name="logits", seed=seed
    )


class ModelServe(ModelServeProcess):
    """`model serve` of one model on loopback, polling its base path every 0.5 s."""

    def __init__(self, base_path: pathlib.Path, name: str, grpc_port: int, rest_port: int, host: str = "127.0.0.1",
                 monitoring: pathlib.Path | None = None):  # fmt: skip
        flags = [
            f"--model_name={name}",
            f"--model_base_path={base_path}",
            "--file_system_poll_wait_seconds=0.5",
        ]
        if monitoring:
            flags.append(f"--monitoring_config_file={monitoring}")
        super().__init__(*flags, host=host, grpc_port=grpc_port, rest_port=rest_port)
        self.name = name

    def wait_ready(self, timeout: float = 120) -> ModelServe:
        self.wait_listening(timeout)
        return self

    def versions(self) -> dict[int, str]:
        return super().versions(self.name)
