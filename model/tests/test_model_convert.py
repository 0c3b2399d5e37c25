"""`model convert`: the SavedModel answers exactly what the Keras model answers."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from model_tools_testing import TINY_LABELS, TINY_SHAPE

from model_tools import preprocessing
from model_tools.convert import ConvertError, convert, read_labels


def _serving_fn(version_dir: pathlib.Path):
    import tensorflow as tf

    return tf.saved_model.load(str(version_dir)).signatures["serving_default"]


def _pixels(rng, n=5):
    return rng.integers(0, 256, size=(n, *TINY_SHAPE), dtype=np.uint8)


@pytest.mark.parametrize("source", ["keras", "h5"])
def test_float32_signature_matches_model_predict(source, tiny_models, tmp_path, rng):
    import tensorflow as tf

    version_dir = convert(tiny_models[source], tmp_path, "m", 3)
    assert version_dir == tmp_path / "m" / "3"
    x = preprocessing.scale(_pixels(rng))
    expected = tiny_models["model"].predict(x, verbose=0)
    out = _serving_fn(version_dir)(pixels=tf.constant(x))
    assert set(out) == {"class_logits"}
    assert np.max(np.abs(out["class_logits"].numpy() - expected)) <= 1e-5


@pytest.mark.parametrize("family", ["xception", "resnet50"])
def test_uint8_signature_scales_inside_the_graph(family, tiny_models, tmp_path, rng):
    import tensorflow as tf

    version_dir = convert(tiny_models["h5"], tmp_path, "m", 1, uint8=True, family=family)
    pixels = _pixels(rng)
    expected = tiny_models["model"].predict(preprocessing.scale(pixels, family), verbose=0)
    fn = _serving_fn(version_dir)
    assert fn.structured_input_signature[1]["pixels"].dtype == tf.uint8
    out = fn(pixels=tf.constant(pixels))["class_logits"].numpy()
    assert np.max(np.abs(out - expected)) <= 1e-5


def test_labels_output_is_batch_major_strings_and_written_to_assets(converted, rng):
    import tensorflow as tf

    version_dir = converted["float32"]
    out = _serving_fn(version_dir)(pixels=tf.constant(preprocessing.scale(_pixels(rng, 3))))
    assert out["labels"].dtype == tf.string
    assert out["labels"].shape == (3, len(TINY_LABELS))
    assert [v.decode() for v in out["labels"].numpy()[2]] == TINY_LABELS
    assert (version_dir / "assets.extra" / "labels.txt").read_text().split() == TINY_LABELS


def test_warmup_records_are_prediction_logs_the_model_accepts(converted):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = converted["uint8"] / "assets.extra" / "tf_serving_warmup_requests"
    records = [
        prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))
    ]
    assert len(records) >= 1
    request = records[0].predict_log.request
    assert request.model_spec.name == "tiny-u8"
    assert request.model_spec.signature_name == "serving_default"
    tensor = tf.make_ndarray(request.inputs["pixels"])
    assert tensor.dtype == np.uint8 and tensor.shape[1:] == TINY_SHAPE
    out = _serving_fn(converted["uint8"])(pixels=tf.constant(tensor))
    assert out["class_logits"].shape == (tensor.shape[0], len(TINY_LABELS))


def test_existing_version_is_refused_and_force_replaces_it(tiny_models, tmp_path):
    version_dir = convert(tiny_models["keras"], tmp_path, "m", 1, warmup_records=False)
    (version_dir / "marker").write_text("old")
    with pytest.raises(ConvertError, match="already exists"):
        convert(tiny_models["keras"], tmp_path, "m", 1)
    assert (version_dir / "marker").read_text() == "old"
    convert(tiny_models["keras"], tmp_path, "m", 1, force=True, warmup_records=False)
    assert not (version_dir / "marker").exists()
    assert (version_dir / "saved_model.pb").is_file()
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1"]  # no staging leftovers


def test_failed_conversion_leaves_nothing_behind(tiny_models, tmp_path):
    with pytest.raises(ConvertError, match="2 labels for a model with 4 outputs"):
        convert(tiny_models["keras"], tmp_path, "m", 1, labels=["a", "b"])
    assert list((tmp_path / "m").iterdir()) == []


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    from model_tools.__main__ import main

    bogus = tmp_path / "broken.keras"
    bogus.write_bytes(b"not a zip")
    assert main(["convert", str(bogus), "--out", str(tmp_path / "out")]) == 2
    assert "cannot load the Keras model" in capsys.readouterr().err
    assert not (tmp_path / "out" / "clothing-model" / "1").exists()


def test_models_that_are_not_image_classifiers_are_refused(tmp_path):
    import keras

    inputs = keras.Input(shape=(7,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    path = tmp_path / "tabular.keras"
    model.save(path)
    with pytest.raises(ConvertError, match=r"image input \[batch, H, W, 3\]"):
        convert(path, tmp_path / "out", "tab", 1)


def test_read_labels_skips_blank_lines_and_rejects_empty_files(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("a\n\n b \n")
    assert read_labels(path) == ["a", "b"]
    path.write_text("\n")
    with pytest.raises(ConvertError, match="no labels"):
        read_labels(path)
