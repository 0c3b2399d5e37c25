"""In-process pieces of `model serve`: tensor encoding, REST body parsing, flags and configs."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from model_tools import serve, serve_rest, tensor_codec
from model_tools.status import ServingError


def _tensor_proto():
    from tensorflow.core.framework import tensor_pb2

    return tensor_pb2.TensorProto()


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.arange(6, dtype=np.uint8).reshape(1, 2, 3),
        np.array([[1.5, -2.0]], dtype=np.float16),
        np.array([b"dress", b"hat"], dtype=object),
        np.array([[True, False]]),
    ],
)
def test_typed_fields_round_trip_and_match_tensorflow(array):
    import tensorflow as tf

    proto = _tensor_proto()
    tensor_codec.to_proto(array, proto)
    assert not proto.tensor_content  # TF Serving's default AsProtoField encoding
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)
    np.testing.assert_array_equal(tensor_codec.to_numpy(proto), array)


def test_tensor_content_requests_decode_like_tensorflow():
    import tensorflow as tf

    array = np.random.default_rng(0).random((2, 4, 3, 3), dtype=np.float32)
    proto = tf.make_tensor_proto(array)
    assert proto.tensor_content
    np.testing.assert_array_equal(tensor_codec.to_numpy(proto), array)


def test_single_value_is_broadcast_and_bad_counts_are_invalid_argument():
    from tensorflow.core.framework import types_pb2

    proto = _tensor_proto()
    proto.dtype = types_pb2.DT_FLOAT
    proto.tensor_shape.dim.add().size = 3
    proto.float_val.append(0.5)
    np.testing.assert_array_equal(tensor_codec.to_numpy(proto), [0.5, 0.5, 0.5])
    proto.float_val.append(1.0)
    with pytest.raises(ServingError) as err:
        tensor_codec.to_numpy(proto)
    assert err.value.code == "INVALID_ARGUMENT"


class _Signature:
    """The two SignatureDef fields the REST parser reads."""

    def __init__(self, **inputs):
        from tensorflow.core.protobuf import meta_graph_pb2

        self.inputs = {}
        for alias, dtype in inputs.items():
            info = meta_graph_pb2.TensorInfo()
            info.dtype = dtype
            self.inputs[alias] = info


def test_rest_row_and_columnar_bodies():
    sig = _Signature(image=4)  # DT_UINT8
    inputs, row = serve_rest.parse_predict_body({"instances": [[[[1, 2, 3]]], [[[4, 5, 6]]]]}, sig)
    assert row and inputs["image"].dtype == np.uint8 and inputs["image"].shape == (2, 1, 1, 3)
    inputs, row = serve_rest.parse_predict_body({"inputs": {"image": [[[[1, 2, 3]]]]}}, sig)
    assert not row and inputs["image"].shape == (1, 1, 1, 3)
    inputs, _ = serve_rest.parse_predict_body({"instances": [{"image": [[[7, 8, 9]]]}]}, sig)
    assert inputs["image"].tolist() == [[[[7, 8, 9]]]]
    strings, _ = serve_rest.parse_predict_body({"instances": [{"b64": "aGk="}]}, _Signature(s=7))
    assert strings["s"].tolist() == [b"hi"]
    for body, message in [
        ({"instances": [1], "inputs": [1]}, "Not both"),
        ({"instances": []}, "non-empty"),
        ({"instances": [[300]]}, "Failed to process element"),
    ]:
        with pytest.raises(ServingError, match=message):
            serve_rest.parse_predict_body(body, sig)


def test_rest_output_formats():
    outputs = {"scores": np.array([[0.5, 1.5]], np.float32), "labels": np.array([[b"a", b"b"]], dtype=object)}
    assert serve_rest.format_predictions(outputs, True) == {
        "predictions": [{"scores": [0.5, 1.5], "labels": ["a", "b"]}]
    }
    assert serve_rest.format_predictions({"scores": outputs["scores"]}, False) == {"outputs": [[0.5, 1.5]]}


def _flags(*argv):
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    return parser.parse_known_args(list(argv))


def test_tf_serving_flag_spellings_parse():
    args, extra = _flags(
        "--port=9000",
        "--rest_api_port=0",
        "--model_name=m",
        "--model_base_path=/models/m",
        "--enable_model_warmup=false",
        "--enable_batching",
        "--batching_parameters_file=/b.config",
        "--tensorflow_intra_op_parallelism=2",
        "--no_such_flag=1",
    )
    assert (args.port, args.rest_api_port, args.model_name) == (9000, 0, "m")
    assert args.enable_model_warmup is False
    assert args.enable_batching == "true" and args.batching_parameters_file == "/b.config"
    assert extra == ["--no_such_flag=1"]


def test_model_config_file_with_policies_and_labels(tmp_path):
    config = tmp_path / "models.config"
    config.write_text("""
model_config_list {
  config { name: 'a' base_path: '/models/a' model_platform: 'tensorflow'
           model_version_policy { specific { versions: 2 versions: 3 } }
           version_labels { key: 'stable' value: 2 } }
  config { name: 'b' base_path: '/models/b' model_platform: 'tensorflow' }
}""")
    args, _ = _flags(f"--model_config_file={config}")
    a, b = serve.read_model_configs(args)
    assert (a.name, str(a.base_path), a.policy, a.specific_versions) == ("a", "/models/a", "specific", (2, 3))
    assert a.version_labels == {"stable": 2}
    assert (b.name, b.policy, b.num_latest) == ("b", "latest", 1)


def test_monitoring_config_enables_prometheus(tmp_path):
    config = tmp_path / "monitoring.config"
    config.write_text('prometheus_config {\n  enable: true,\n  path: "/metrics/tf"\n}\n')
    assert serve.read_prometheus_path(str(config)) == "/metrics/tf"
    config.write_text("prometheus_config { enable: false }")
    assert serve.read_prometheus_path(str(config)) is None
    assert serve.read_prometheus_path(None) is None


def test_manager_version_policy_labels_and_not_found_messages(converted, tiny_models, tmp_path):
    import shutil

    from model_tools.convert import convert
    from model_tools.model_manager import ModelConfig, ModelManager

    base = tmp_path / "tiny"
    shutil.copytree(converted["base"] / "tiny" / "1", base / "1")
    convert(tiny_models["keras"], tmp_path, "tiny", 3, warmup_records=False)
    (base / "2").mkdir()  # an empty, half-copied version must be ignored, not crash the server
    manager = ModelManager(
        [
            ModelConfig(
                "tiny",
                base,
                policy="specific",
                specific_versions=(1,),
                version_labels={"stable": 1, "canary": 3},
            )
        ],
        0,
    )
    assert manager.wait_until_ready()
    assert manager.get("tiny").version == 1  # 3 is newer but not in the policy
    assert manager.get("tiny", label="stable").version == 1
    with pytest.raises(ServingError, match=r"^Servable not found for request: Specific\(tiny, 3\)$"):
        manager.get("tiny", 3)
    with pytest.raises(ServingError, match=r"Specific\(tiny, 3\)"):
        manager.get("tiny", label="canary")  # the label's version is not loaded
    with pytest.raises(ServingError, match="Unrecognized servable version label: beta"):
        manager.get("tiny", label="beta")
    with pytest.raises(ServingError, match=r"^Servable not found for request: Latest\(other\)$"):
        manager.get("other")
    assert manager.model("tiny").status() == [(1, "AVAILABLE", "OK", "")]
