"""`model convert`: Keras `.keras` / `.h5` -> `<out>/<name>/<version>/` SavedModel for TF Serving.

Keras 3's export route (``keras.export.ExportArchive``) with one explicit endpoint,
``serving_default``: input = the model's image input (float32, already scaled, or uint8 raw
pixels scaled inside the graph), outputs = the model's scores and optionally a DT_STRING
``labels`` tensor ``[batch, N]`` (batch-major so TF Serving's batcher can split it).
The version directory is written beside its final place and renamed in, so a failed or
interrupted run leaves nothing a model server could pick up half-written.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile

from model_tools import DEFAULT_SIGNATURE, preprocessing, warmup

SIGNATURE = DEFAULT_SIGNATURE  # the one signature convert exports

LABELS_OUTPUT = "labels"


class ConvertError(Exception):
    """A conversion the user asked for that cannot be done (bad model, existing version...)."""


def read_labels(path: str | pathlib.Path) -> list[str]:
    labels = [line.strip() for line in pathlib.Path(path).read_text().splitlines()]
    labels = [label for label in labels if label]
    if not labels:
        raise ConvertError(f"{path}: no labels (expected one label per line)")
    return labels


def scale_in_graph(x, family: str):
    """TensorFlow twin of ``preprocessing.scale`` for the uint8 signature."""
    import tensorflow as tf

    x = tf.cast(x, tf.float32)
    if family in ("xception", "inception_v3"):
        return x / 127.5 - 1.0
    if family in ("resnet50", "vgg16"):
        return tf.reverse(x, axis=[-1]) - tf.constant(preprocessing._CAFFE_MEAN_BGR)
    raise ConvertError(
        f"unknown preprocessing family {family!r}; choose one of {', '.join(preprocessing.FAMILIES)}"
    )


def load_keras_model(path: pathlib.Path):
    import keras

    if path.suffix not in (".keras", ".h5", ".hdf5"):
        raise ConvertError(f"{path}: expected a .keras or .h5 file")
    if not path.is_file():
        raise ConvertError(f"{path}: no such file")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file; report it plainly
        raise ConvertError(f"{path}: cannot load the Keras model: {exc}") from exc


def image_io(model) -> tuple[str, tuple, str]:
    """(input name, input shape [None, H, W, 3], output name) of a one-in one-out image model."""
    try:
        _ = model.inputs, model.outputs  # raises for a model whose graph was never built
    except (AttributeError, ValueError) as exc:  # e.g. a Sequential model never built
        raise ConvertError(f"the model has no defined input/output: {exc}") from exc
    if not model.inputs or len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConvertError(
            f"expected one image input and one scores output, the model has "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3 or None in shape[1:3]:
        raise ConvertError(
            f"expected an image input [batch, H, W, 3] with fixed H and W, the model's input is {list(shape)}"
        )
    if len(model.outputs[0].shape) != 2:
        raise ConvertError(f"expected a [batch, classes] output, got {list(model.outputs[0].shape)}")
    input_name = getattr(model.inputs[0], "name", None) or "input_image"
    input_name = input_name.split(":")[0].replace("/", "_") or "input_image"
    output_name = model.output_names[0] if getattr(model, "output_names", None) else "output_0"
    if output_name == LABELS_OUTPUT:
        output_name = "scores"
    return input_name, (None,) + shape[1:], output_name


def export_saved_model(
    model,
    dest: pathlib.Path,
    *,
    labels=None,
    uint8=False,
    family="xception",
    warmup_records=True,
    model_name="model",
):
    """Write the SavedModel (+ assets.extra) of ``model`` into the new directory ``dest``."""
    import keras
    import tensorflow as tf

    input_name, shape, output_name = image_io(model)
    num_classes = int(model.outputs[0].shape[1])
    if labels is not None and len(labels) != num_classes:
        raise ConvertError(f"{len(labels)} labels for a model with {num_classes} outputs")
    if uint8:
        scale_in_graph(tf.zeros([1, 1, 1, 3], tf.uint8), family)  # validates the family early
    spec = tf.TensorSpec(shape, tf.uint8 if uint8 else tf.float32, name=input_name)
    label_table = tf.constant(labels or [], dtype=tf.string)

    def serve(image):
        x = scale_in_graph(image, family) if uint8 else image
        scores = tf.cast(model(x, training=False), tf.float32)
        outputs = {output_name: scores}
        if labels is not None:
            outputs[LABELS_OUTPUT] = tf.tile(label_table[None, :], [tf.shape(scores)[0], 1])
        return outputs

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=SIGNATURE, fn=serve, input_signature=[spec])
    archive.write_out(str(dest), verbose=False)

    extra = dest / "assets.extra"
    extra.mkdir(exist_ok=True)
    if labels is not None:
        (extra / "labels.txt").write_text("".join(f"{label}\n" for label in labels))
    if warmup_records:
        warmup.write_records(
            extra / warmup.FILENAME,
            model_name=model_name,
            signature=SIGNATURE,
            input_name=input_name,
            shape=shape,
            uint8=uint8,
        )


def convert(
    source: pathlib.Path,
    out: pathlib.Path,
    name: str,
    version: int,
    *,
    labels=None,
    uint8=False,
    family="xception",
    force=False,
    warmup_records=True,
) -> pathlib.Path:
    if version < 1:
        raise ConvertError(f"version must be a positive integer, got {version}")
    final = out / name / str(version)
    if final.exists() and not force:
        raise ConvertError(f"{final} already exists; pass --force to replace it")
    model = load_keras_model(source)
    final.parent.mkdir(parents=True, exist_ok=True)
    # A dot-name is not a number, so TF Serving's version polling never looks at it.
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{version}.partial-", dir=final.parent))
    try:
        export_saved_model(
            model,
            staging / "v",
            labels=labels,
            uint8=uint8,
            family=family,
            warmup_records=warmup_records,
            model_name=name,
        )
        if final.exists():  # --force: move the old one aside first (rename cannot replace a dir)
            final.rename(staging / "old")
        (staging / "v").rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def add_arguments(parser):
    parser.add_argument("model", help="Keras model file (.keras or legacy .h5)")
    parser.add_argument("--out", required=True, help="model base directory, e.g. models/")
    parser.add_argument("--name", default="clothing-model", help="model name (a directory level)")
    parser.add_argument("--version", type=int, default=1, help="version directory (integer)")
    parser.add_argument("--labels", help="file with one class label per line, in output order")
    parser.add_argument(
        "--uint8", action="store_true", help="uint8 raw-pixel input; the graph does the preprocessing scaling"
    )
    parser.add_argument(
        "--preprocessing",
        default="xception",
        choices=preprocessing.FAMILIES,
        help="scaling family used inside the graph with --uint8",
    )
    parser.add_argument(
        "--no-warmup", action="store_true", help="do not write assets.extra/tf_serving_warmup_requests"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing version")


def run(args) -> int:
    import sys

    try:
        labels = read_labels(args.labels) if args.labels else None
        final = convert(
            pathlib.Path(args.model),
            pathlib.Path(args.out),
            args.name,
            args.version,
            labels=labels,
            uint8=args.uint8,
            family=args.preprocessing,
            force=args.force,
            warmup_records=not args.no_warmup,
        )
    except ConvertError as exc:
        print(f"model convert: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {final}")
    return 0
