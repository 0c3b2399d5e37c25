import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2

from gateway.tensors import TensorDecodeError, from_tensor_proto, to_tensor_proto


@pytest.mark.parametrize("dtype,enum", [(np.float32, types_pb2.DT_FLOAT), (np.uint8, types_pb2.DT_UINT8)])
def test_to_tensor_proto_uses_tensor_content(dtype, enum):
    array = (np.arange(2 * 4 * 5 * 3) % 200).astype(dtype).reshape(2, 4, 5, 3)
    proto = to_tensor_proto(array)
    assert proto.dtype == enum
    assert [d.size for d in proto.tensor_shape.dim] == [2, 4, 5, 3]
    assert len(proto.tensor_content) == array.nbytes
    assert not proto.float_val and not proto.int_val
    np.testing.assert_array_equal(from_tensor_proto(proto), array)


def test_big_endian_input_is_written_little_endian():
    array = np.array([[1.5, -2.0]], dtype=">f4")
    proto = to_tensor_proto(array)
    assert proto.tensor_content == np.array([[1.5, -2.0]], dtype="<f4").tobytes()


def test_float_val_outputs_are_decoded():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    proto.tensor_shape.dim.add(size=1)
    proto.tensor_shape.dim.add(size=3)
    proto.float_val.extend([0.5, -1.0, 2.0])
    np.testing.assert_array_equal(from_tensor_proto(proto), np.array([[0.5, -1.0, 2.0]], dtype=np.float32))


def test_single_repeated_value_fills_the_shape():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    proto.tensor_shape.dim.add(size=2)
    proto.tensor_shape.dim.add(size=2)
    proto.float_val.append(7.0)
    np.testing.assert_array_equal(from_tensor_proto(proto), np.full((2, 2), 7.0, dtype=np.float32))


def test_half_and_double_outputs():
    half = tensor_pb2.TensorProto(dtype=types_pb2.DT_HALF)
    half.tensor_shape.dim.add(size=2)
    half.half_val.extend(np.array([1.5, -0.25], dtype=np.float16).view(np.uint16).tolist())
    np.testing.assert_array_equal(from_tensor_proto(half), np.array([1.5, -0.25], dtype=np.float16))
    double = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_DOUBLE, tensor_content=np.array([3.25], "<f8").tobytes()
    )
    double.tensor_shape.dim.add(size=1)
    assert from_tensor_proto(double)[0] == 3.25


def test_string_outputs_are_decoded():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
    proto.tensor_shape.dim.add(size=1)
    proto.tensor_shape.dim.add(size=2)
    proto.string_val.extend([b"hat", "t-shirt \u00e9".encode()])
    assert from_tensor_proto(proto).tolist() == [["hat", "t-shirt \u00e9"]]


def test_wrong_sized_content_is_an_error_not_garbage():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=b"\0" * 12)
    proto.tensor_shape.dim.add(size=1)
    proto.tensor_shape.dim.add(size=10)
    with pytest.raises(TensorDecodeError, match="needs 40"):
        from_tensor_proto(proto)


def test_unsupported_dtype_is_an_error():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_COMPLEX64)
    with pytest.raises(TensorDecodeError, match="DT_COMPLEX64"):
        from_tensor_proto(proto)


from hypothesis import given  # noqa: E402
from hypothesis import settings as hsettings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


@hsettings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.uint8, np.int64, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
    )
)
def test_round_trip_of_any_numeric_array(array):
    decoded = from_tensor_proto(to_tensor_proto(array))
    assert decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize("dtype", ["float32", "uint8", "float64", "int32"])
@pytest.mark.parametrize("outputs", [["scores"], ["dense_7", "labels"], []])
def test_hand_encoded_predict_request_is_the_message_protobuf_builds(dtype, outputs):
    """encode_predict_request joins the raw buffer in by hand: it must parse to the very message
    protobuf builds field by field, and byte for byte when protobuf serializes it back."""
    from tensorflow_serving.apis import predict_pb2

    from gateway.tensors import encode_predict_request

    rng = np.random.default_rng(7)
    array = (rng.random((1, 299, 299, 3)) * 255).astype(dtype)  # > 2 MiB-ish lengths: 3-byte varints
    encoded = encode_predict_request("clothing-model", "serving_default", "input_8", array, outputs)

    expected = predict_pb2.PredictRequest()
    expected.model_spec.name = "clothing-model"
    expected.model_spec.signature_name = "serving_default"
    expected.inputs["input_8"].CopyFrom(to_tensor_proto(array))
    expected.output_filter.extend(outputs)
    parsed = predict_pb2.PredictRequest.FromString(encoded)
    assert parsed == expected
    assert parsed.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    assert np.array_equal(from_tensor_proto(parsed.inputs["input_8"]), array)


def test_hand_encoded_request_handles_non_contiguous_and_big_endian_arrays():
    from tensorflow_serving.apis import predict_pb2

    from gateway.tensors import encode_predict_request

    base = np.arange(2 * 4 * 6 * 3, dtype=">f4").reshape(2, 4, 6, 3)
    view = base[:, ::2, ::-1]  # strided, reversed, big-endian
    parsed = predict_pb2.PredictRequest.FromString(encode_predict_request("m", "s", "x", view, ["y"]))
    assert np.array_equal(from_tensor_proto(parsed.inputs["x"]), view)
    assert len(parsed.inputs["x"].tensor_content) == view.size * 4
