"""Shared, session-scoped real models for the model-tooling tests.

TensorFlow takes seconds to import and each conversion a few more, so every tiny Keras model
and every converted SavedModel is built once per test session and shared (read-only).
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))  # model_tools_testing, next to the tests

from model_tools_testing import TINY_LABELS, build_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{"keras": path, "h5": path, "model": the in-memory model} of the same weights."""
    folder = tmp_path_factory.mktemp("keras-models")
    model = build_tiny_model()
    paths = {"keras": folder / "tiny.keras", "h5": folder / "tiny.h5"}
    model.save(paths["keras"])
    model.save(paths["h5"])
    return {**paths, "model": model}


@pytest.fixture(scope="session")
def labels_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("labels") / "labels.txt"
    path.write_text("\n".join(TINY_LABELS) + "\n")
    return path


@pytest.fixture(scope="session")
def converted(tiny_models, labels_file, tmp_path_factory):
    """SavedModels of the tiny model: float32 from .keras with labels, uint8 from .h5."""
    from model_tools.convert import convert, read_labels

    base = tmp_path_factory.mktemp("saved-models")
    return {
        "base": base,
        "float32": convert(tiny_models["keras"], base, "tiny", 1, labels=read_labels(labels_file)),
        "uint8": convert(tiny_models["h5"], base, "tiny-u8", 1, uint8=True),
    }


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(1234)
