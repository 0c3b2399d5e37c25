"""Real (tiny) Keras image classifiers for tests that need a model fast: a convolution, optional
BatchNorm with non-trivial statistics (so inference-mode handling is exercised), pooling and a
dense logits layer."""

from __future__ import annotations

import numpy as np


def build_tiny_classifier(
    shape: tuple[int, int, int],
    classes: int,
    *,
    filters: int,
    output_name: str,
    seed: int,
    batch_norm: bool = False,
):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=shape, name="pixels")
    x = keras.layers.Conv2D(filters, 3, activation="relu")(inputs)
    if batch_norm:
        x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, name=output_name)(x)
    model = keras.Model(inputs, outputs)
    if batch_norm:
        norm = model.layers[2]
        norm.moving_mean.assign(np.linspace(-0.5, 0.5, filters).astype("float32"))
        norm.moving_variance.assign(np.linspace(0.5, 2.0, filters).astype("float32"))
    return model
