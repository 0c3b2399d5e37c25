"""Helpers shared by the model-tooling tests: the tiny real Keras model and a `model serve`
subprocess on loopback ports. (A uniquely named module: every test folder of the repository
shares one pytest run and one sys.modules.)"""

from __future__ import annotations

from support.model_serve import ModelServeProcess
from support.tiny_model import build_tiny_classifier

TINY_SHAPE = (12, 10, 3)  # H, W, C: deliberately not square, to catch H/W swaps
TINY_LABELS = ["cat", "dog", "emu", "yak"]


def build_tiny_model(seed: int = 7):
    """A real (tiny) image classifier: conv + BatchNorm + pooling + dense logits."""
    return build_tiny_classifier(
        TINY_SHAPE, len(TINY_LABELS), filters=6, output_name="class_logits", seed=seed, batch_norm=True
    )


# `model serve` on free loopback ports, flags as given (tests/support/model_serve.py).
ServeProcess = ModelServeProcess
