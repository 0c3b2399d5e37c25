"""`model inspect` against the SavedModel's real signature, loaded independently with TF."""

from __future__ import annotations

import re

import yaml

from model_tools.__main__ import main


def _section(text: str, key: str) -> str:
    start = text.index(f"signature_def['{key}']:")
    end = text.find("signature_def['", start + 1)
    return text[start:] if end < 0 else text[start:end]


def _tf_shape(spec) -> str:
    dims = [-1 if d is None else d for d in spec.shape.as_list()]
    return "(" + ", ".join(map(str, dims)) + ")"


def _check_against_tensorflow(version_dir, text):
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    section = _section(text, "serving_default")
    specs = {**fn.structured_input_signature[1], **fn.structured_outputs}
    kinds = {
        **{k: "inputs" for k in fn.structured_input_signature[1]},
        **{k: "outputs" for k in fn.structured_outputs},
    }
    listed = re.findall(r"(inputs|outputs)\['([^']+)'\] tensor_info:", section)
    assert sorted(listed) == sorted((kinds[k], k) for k in specs)
    for alias, spec in specs.items():
        block = section[section.index(f"{kinds[alias]}['{alias}']") :]
        dtype = types_pb2.DataType.Name(spec.dtype.as_datatype_enum)
        assert f"dtype: {dtype}" in block.splitlines()[1]
        assert f"shape: {_tf_shape(spec)}" in block.splitlines()[2]
    assert "Method name is: tensorflow/serving/predict" in section


def test_float32_model_with_labels(converted, capsys):
    version_dir = converted["float32"]
    assert main(["inspect", str(version_dir)]) == 0
    text = capsys.readouterr().out
    _check_against_tensorflow(version_dir, text)
    assert "image input 'pixels' (float, 10x12)" in text
    assert "scores output 'class_logits', labels output 'labels'" in text
    values = yaml.safe_load(text[text.index("global:") :])
    assert values == {
        "global": {
            "model": {
                "name": "tiny",
                "version": 1,
                "signature": "serving_default",
                "labels": [],
                "preprocessing": "xception",
            }
        }
    }


def test_uint8_model_without_labels_output(converted, capsys):
    version_dir = converted["uint8"]
    assert main(["inspect", str(version_dir)]) == 0
    text = capsys.readouterr().out
    _check_against_tensorflow(version_dir, text)
    assert "DT_UINT8" in _section(text, "serving_default")
    assert "ignored: uint8 input" in text
    values = yaml.safe_load(text[text.index("global:") :])
    assert values["global"]["model"]["name"] == "tiny-u8"


def test_snippet_keys_exist_in_the_chart_values(converted, capsys):
    """The snippet must paste into the chart: every key it sets exists in values.yaml."""
    import pathlib

    chart_values = pathlib.Path(__file__).resolve().parents[2] / "values.yaml"
    main(["inspect", str(converted["float32"])])
    text = capsys.readouterr().out
    snippet = yaml.safe_load(text[text.index("global:") :])["global"]["model"]
    known = yaml.safe_load(chart_values.read_text())["global"]["model"]
    assert set(snippet) <= set(known)


def test_missing_directory_is_a_clear_error(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope" / "1")]) == 2
    assert "no saved_model.pb" in capsys.readouterr().err
