"""Signature discovery and gRPC status mapping, on real TF Serving protos (no server needed)."""

import grpc
import pytest
from tensorflow.core.framework import tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from gateway.errors import GatewayError
from gateway.model_client import map_rpc_error, parse_signature
from gateway.settings import Settings


def info(dtype, dims):
    return meta_graph_pb2.TensorInfo(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]
        ),
    )


def metadata(inputs, outputs, name="serving_default", version=3):
    sig = meta_graph_pb2.SignatureDef()
    for key, value in inputs.items():
        sig.inputs[key].CopyFrom(value)
    for key, value in outputs.items():
        sig.outputs[key].CopyFrom(value)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    sigs.signature_def[name].CopyFrom(sig)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.version.value = version
    response.metadata["signature_def"].Pack(sigs)
    return response


IMAGE = info(types_pb2.DT_FLOAT, [-1, 150, 200, 3])
SCORES = info(types_pb2.DT_FLOAT, [-1, 10])
LABELS = info(types_pb2.DT_STRING, [-1, 10])


def test_reads_names_dtype_size_and_labels_output():
    sig = parse_signature(metadata({"input_8": IMAGE}, {"dense_7": SCORES, "labels": LABELS}), Settings())
    assert (sig.version, sig.input_name, sig.input_dtype) == (3, "input_8", "float32")
    assert (sig.width, sig.height) == (200, 150)
    assert (sig.scores_output, sig.labels_output) == ("dense_7", "labels")


def test_uint8_input_and_no_labels_output():
    sig = parse_signature(
        metadata({"image": info(types_pb2.DT_UINT8, [-1, 299, 299, 3])}, {"output_0": SCORES}), Settings()
    )
    assert sig.input_dtype == "uint8" and sig.labels_output is None


def test_dynamic_size_needs_image_size():
    dynamic = metadata({"x": info(types_pb2.DT_FLOAT, [-1, -1, -1, 3])}, {"y": SCORES})
    with pytest.raises(GatewayError, match="IMAGE_SIZE"):
        parse_signature(dynamic, Settings())
    sig = parse_signature(dynamic, Settings(image_size=(224, 160)))
    assert (sig.width, sig.height) == (224, 160)


def test_several_float_outputs_need_a_choice():
    response = metadata({"x": IMAGE}, {"logits": SCORES, "embedding": info(types_pb2.DT_FLOAT, [-1, 64])})
    with pytest.raises(GatewayError, match="MODEL_SCORES_OUTPUT"):
        parse_signature(response, Settings())
    assert parse_signature(response, Settings(scores_output="logits")).scores_output == "logits"
    with pytest.raises(GatewayError, match="MODEL_SCORES_OUTPUT"):
        parse_signature(response, Settings(scores_output="probs"))


@pytest.mark.parametrize(
    "inputs,message",
    [
        ({"x": info(types_pb2.DT_STRING, [-1])}, "dtype DT_STRING"),
        ({"x": info(types_pb2.DT_FLOAT, [-1, 10])}, "shape"),
        ({"x": info(types_pb2.DT_FLOAT, [-1, 32, 32, 1])}, "shape"),
        ({"a": IMAGE, "b": IMAGE}, "2 inputs"),
    ],
)
def test_unusable_signatures_are_503_with_the_reason(inputs, message):
    with pytest.raises(GatewayError, match=message) as caught:
        parse_signature(metadata(inputs, {"y": SCORES}), Settings())
    assert (caught.value.status, caught.value.code) == (503, "model_signature_unusable")


def test_missing_signature_names_the_ones_found():
    with pytest.raises(GatewayError, match="found: predict_images"):
        parse_signature(metadata({"x": IMAGE}, {"y": SCORES}, name="predict_images"), Settings())


class FakeRpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


@pytest.mark.parametrize(
    "code,status,name",
    [
        (grpc.StatusCode.UNAVAILABLE, 503, "model_unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "model_timeout"),
        (grpc.StatusCode.INVALID_ARGUMENT, 502, "model_rejected_input"),
        (grpc.StatusCode.NOT_FOUND, 503, "model_not_found"),
        (grpc.StatusCode.FAILED_PRECONDITION, 503, "model_unavailable"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 503, "model_overloaded"),
        (grpc.StatusCode.INTERNAL, 502, "model_error"),
    ],
)
def test_grpc_status_mapping_keeps_the_model_message(code, status, name):
    error = map_rpc_error(FakeRpcError(code, "Servable says why"), "clothing-model")
    assert (error.status, error.code) == (status, name)
    assert "Servable says why" in error.message and code.name in error.message
