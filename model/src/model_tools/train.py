"""`model train`: the demo classifier, a small CNN trained from scratch on CPU.

No pretrained weights can be downloaded on the build machines, so instead of the lesson's
Xception transfer learning this trains a compact separable-convolution network. Images go
through the serving preprocessing (``model_tools.preprocessing``): what the network learns on
is byte-for-byte what the gateway sends. The output is logits (no softmax), like the lesson.
"""

from __future__ import annotations

import json
import pathlib
import time

import numpy as np

from model_tools import preprocessing

DEFAULT_DATASET = "../shared/datasets/clothing-dataset-small"


def build_network(num_classes: int, size: tuple[int, int], width: int = 32):
    """Separable-conv CNN; ~0.3 M parameters at width 32 (a ~4 MB .keras file)."""
    import keras
    from keras import layers

    w, h = size
    inputs = keras.Input(shape=(h, w, 3), name="input_image")
    x = layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    for filters in (width * 2, width * 4, width * 8, width * 8):
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(num_classes, name="logits")(x)  # logits, like the lesson's model
    return keras.Model(inputs, outputs, name="clothing_cnn")


def _augmenter(seed: int):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed),
            layers.RandomZoom((-0.15, 0.15), fill_mode="nearest", seed=seed),
            layers.RandomContrast(0.2, seed=seed),
        ],
        name="augment",
    )


class _TimeBudget:
    """Stops training once the wall-clock budget is spent (checked after each epoch)."""

    def __new__(cls, minutes: float):
        import keras

        class TimeBudget(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.started = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                if time.monotonic() - self.started > minutes * 60:
                    print(f"time budget of {minutes} min spent after epoch {epoch + 1}", flush=True)
                    self.model.stop_training = True

        return TimeBudget()


def train(
    dataset: pathlib.Path,
    out_dir: pathlib.Path,
    *,
    size=(128, 128),
    epochs=24,
    batch_size=32,
    max_minutes=20.0,
    width=32,
    seed=1,
    samples_dir=None,
    threads=2,
):
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(seed)
    started = time.monotonic()

    classes = preprocessing.class_folders(dataset / "train")
    x_train, y_train, _ = preprocessing.load_split(dataset / "train", classes, size)
    x_val, y_val, _ = preprocessing.load_split(dataset / "validation", classes, size)
    x_test, y_test, _ = preprocessing.load_split(dataset / "test", classes, size)
    print(
        f"loaded {len(x_train)} train / {len(x_val)} validation / {len(x_test)} test images "
        f"at {size[0]}x{size[1]} in {time.monotonic() - started:.0f} s",
        flush=True,
    )

    augment = _augmenter(seed)
    train_ds = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(
            lambda x, y: (augment(tf.cast(x, tf.float32), training=True), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .map(lambda x, y: (x / 127.5 - 1.0, y))  # xception scaling, as preprocessing.scale
        .prefetch(2)
    )
    val_x = preprocessing.scale(x_val)

    model = build_network(len(classes), size, width)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=6, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, min_lr=1e-5),
        _TimeBudget(max_minutes),
    ]
    # Inverse-frequency class weights: the split is unbalanced (t-shirts outnumber hats several
    # times) and a demo that never answers "hat" is a poor demo.
    counts = np.bincount(y_train, minlength=len(classes)).astype("float64")
    class_weight = {i: float(len(y_train) / (len(classes) * c)) for i, c in enumerate(counts)}
    history = model.fit(
        train_ds,
        validation_data=(val_x, y_val),
        epochs=epochs,
        callbacks=callbacks,
        verbose=2,
        class_weight=class_weight,
    )

    test_logits = model.predict(preprocessing.scale(x_test), batch_size=64, verbose=0)
    test_accuracy = float(np.mean(np.argmax(test_logits, axis=1) == y_test))
    val_accuracy = float(np.mean(np.argmax(model.predict(val_x, verbose=0), axis=1) == y_val))

    out_dir.mkdir(parents=True, exist_ok=True)
    # Save an uncompiled copy: the optimizer state would triple the file for no serving use.
    inference_model = keras.models.clone_model(model)
    inference_model.set_weights(model.get_weights())
    inference_model.save(out_dir / "clothing-model.keras")
    (out_dir / "labels.txt").write_text("".join(f"{c}\n" for c in classes))
    report = {
        "command": (
            f"model train --dataset {dataset} --out {out_dir} --size {size[0]} "
            f"--epochs {epochs} --batch-size {batch_size} --max-minutes {max_minutes:g} "
            f"--width {width} --seed {seed}"
        ),
        "dataset": str(dataset),
        "input_size": {"width": size[0], "height": size[1]},
        "preprocessing": "xception",
        "output": "logits",
        "classes": classes,
        "parameters": int(model.count_params()),
        "epochs_run": len(history.history["loss"]),
        "class_weight": {c: round(class_weight[i], 3) for i, c in enumerate(classes)},
        "train_seconds": round(time.monotonic() - started),
        "validation_accuracy": round(val_accuracy, 4),
        "test_images": int(len(y_test)),
        "test_accuracy": round(test_accuracy, 4),
        "per_class_test_accuracy": {
            c: round(float(np.mean(np.argmax(test_logits[y_test == i], axis=1) == i)), 4)
            for i, c in enumerate(classes)
        },
    }
    if samples_dir is not None:
        report.update(_sample_predictions(model, classes, pathlib.Path(samples_dir), size))
    (out_dir / "training-report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2), flush=True)
    return report


def _sample_predictions(model, classes, samples_dir: pathlib.Path, size):
    samples = {}
    for path in sorted(samples_dir.glob("*.jpg")):
        x = preprocessing.scale(preprocessing.load_pixels(path, size)[None])
        predicted = classes[int(np.argmax(model.predict(x, verbose=0)[0]))]
        samples[path.name] = {"true": path.stem, "predicted": predicted}
    correct = [name for name, s in samples.items() if s["true"] == s["predicted"]]
    demo = "pants.jpg" if "pants.jpg" in correct else (correct[0] if correct else None)
    return {"samples": samples, "demo_image": demo}


def add_arguments(parser):
    parser.add_argument(
        "--dataset", default=DEFAULT_DATASET, help="directory with train/ validation/ test/ class folders"
    )
    parser.add_argument(
        "--out",
        default="build/train",
        help="writes clothing-model.keras, "
        "labels.txt and training-report.json here (default build/train; the committed "
        "demo model in model/demo is replaced only with --out model/demo --force)",
    )
    parser.add_argument("--force", action="store_true", help="replace a model already in --out")
    parser.add_argument("--size", type=int, default=128, help="square input size in pixels")
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=20.0,
        help="stop after the epoch that crosses this wall-clock budget",
    )
    parser.add_argument("--width", type=int, default=32, help="filters of the first block")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--samples", default="samples/images", help="one image per class, predicted into the report"
    )


DATASET_SOURCE = "https://github.com/alexeygrigorev/clothing-dataset-small"


def check_paths(dataset: pathlib.Path, out: pathlib.Path, force: bool) -> str | None:
    """What is wrong with the dataset or the output folder, in words a user can act on."""
    missing = [split for split in ("train", "validation", "test") if not (dataset / split).is_dir()]
    if missing:
        return (
            f"no dataset at {dataset} (missing {', '.join(m + '/' for m in missing)}): get the lesson's "
            f"dataset with `git clone {DATASET_SOURCE}` and pass --dataset <path>/clothing-dataset-small "
            "(train/, validation/ and test/ hold one folder of JPEGs per class)"
        )
    if (out / "clothing-model.keras").exists() and not force:
        return (
            f"{out}/clothing-model.keras exists: pass --force to replace it, or another --out "
            "(the committed demo model lives in model/demo)"
        )
    return None


def run(args) -> int:
    import sys

    problem = check_paths(pathlib.Path(args.dataset), pathlib.Path(args.out), args.force)
    if problem:
        print(f"model train: {problem}", file=sys.stderr)
        return 2
    samples = pathlib.Path(args.samples)
    train(
        pathlib.Path(args.dataset),
        pathlib.Path(args.out),
        size=(args.size, args.size),
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_minutes=args.max_minutes,
        width=args.width,
        seed=args.seed,
        threads=args.threads,
        samples_dir=samples if samples.is_dir() else None,
    )
    return 0
