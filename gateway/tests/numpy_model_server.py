"""A small TF-Serving-compatible PredictionService for gateway tests: real grpc.server, real
TF Serving protos, a numpy "model" (per-channel means x a fixed matrix).

It serves GetModelMetadata (a signature_def map like TF Serving's) and Predict (validating the
input name, dtype and shape the way TF Serving does, answering INVALID_ARGUMENT otherwise), and
counts the Predict calls it answers, so tests can see which server got which request.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

CLOTHING = ("dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt")
_DTYPES = {"float32": types_pb2.DT_FLOAT, "uint8": types_pb2.DT_UINT8}


@dataclass
class FakeModel:
    """What the server pretends to serve; tests change fields to re-export it."""

    name: str = "clothing-model"
    version: int = 1
    input_name: str = "input_8"
    input_dtype: str = "float32"
    size: int = 299
    scores_output: str = "dense_7"
    labels_output: str | None = None
    labels: tuple[str, ...] = CLOTHING
    scores_as_float_val: bool = False  # answer in float_val instead of tensor_content
    delay_seconds: float = 0.0
    fail_with: grpc.StatusCode | None = None
    unavailable_calls: int = 0  # the next Predict calls that answer UNAVAILABLE (a pod going away)
    weights: np.ndarray = field(
        default_factory=lambda: np.linspace(-1, 1, 30, dtype=np.float32).reshape(3, 10)
    )

    def scores(self, batch: np.ndarray) -> np.ndarray:
        """[batch, N]: channel means of the (scaled) image times a fixed [3, N] matrix."""
        means = batch.astype(np.float32).mean(axis=(1, 2))
        return means @ self.weights[:, : len(self.labels)]


def _tensor_info(name: str, dtype: int, dims: list[int]) -> meta_graph_pb2.TensorInfo:
    return meta_graph_pb2.TensorInfo(
        name=name + ":0",
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]
        ),
    )


class NumpyPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, model: FakeModel):
        self.model = model
        self.predict_calls = 0
        self.metadata_calls = 0
        self.last_request: predict_pb2.PredictRequest | None = None
        self._lock = threading.Lock()

    def GetModelMetadata(self, request, context):
        with self._lock:
            self.metadata_calls += 1
        m = self.model
        if request.model_spec.name != m.name:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Latest({request.model_spec.name})",
            )
        signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
        signature.inputs[m.input_name].CopyFrom(
            _tensor_info(m.input_name, _DTYPES[m.input_dtype], [-1, m.size, m.size, 3])
        )
        signature.outputs[m.scores_output].CopyFrom(
            _tensor_info(m.scores_output, types_pb2.DT_FLOAT, [-1, len(m.labels)])
        )
        if m.labels_output:
            signature.outputs[m.labels_output].CopyFrom(
                _tensor_info(m.labels_output, types_pb2.DT_STRING, [-1, len(m.labels)])
            )
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        signature_map.signature_def["serving_default"].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = m.name
        response.model_spec.version.value = m.version
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def Predict(self, request, context):
        m = self.model
        with self._lock:
            self.predict_calls += 1
            self.last_request = request
        if m.delay_seconds:
            time.sleep(m.delay_seconds)
        if m.fail_with is not None:
            context.abort(m.fail_with, "injected failure")
        with self._lock:
            going_away = m.unavailable_calls > 0
            m.unavailable_calls -= going_away
        if going_away:
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected: the server is going away")
        if request.model_spec.name != m.name:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Latest({request.model_spec.name})",
            )
        if set(request.inputs) != {m.input_name}:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input tensor alias not found in signature: {sorted(request.inputs)}",
            )
        tensor = request.inputs[m.input_name]
        if tensor.dtype != _DTYPES[m.input_dtype]:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Expects arg[0] to be {m.input_dtype} but {tensor.dtype} is provided",
            )
        shape = [d.size for d in tensor.tensor_shape.dim]
        if shape[1:] != [m.size, m.size, 3]:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input shape {shape} incompatible with [-1,{m.size},{m.size},3]",
            )
        dtype = np.float32 if m.input_dtype == "float32" else np.uint8
        batch = np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape)
        scores = m.scores(batch)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = m.name
        response.model_spec.version.value = m.version
        response.model_spec.signature_name = "serving_default"
        wanted = set(request.output_filter) or {m.scores_output, m.labels_output}
        if m.scores_output in wanted:
            out = response.outputs[m.scores_output]
            out.dtype = types_pb2.DT_FLOAT
            out.tensor_shape.dim.add(size=scores.shape[0])
            out.tensor_shape.dim.add(size=scores.shape[1])
            if m.scores_as_float_val:
                out.float_val.extend(scores.ravel().tolist())
            else:
                out.tensor_content = scores.astype("<f4").tobytes()
        if m.labels_output and m.labels_output in wanted:
            labels = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
            labels.tensor_shape.dim.add(size=scores.shape[0])
            labels.tensor_shape.dim.add(size=len(m.labels))
            labels.string_val.extend([label.encode() for label in m.labels] * scores.shape[0])
            response.outputs[m.labels_output].CopyFrom(labels)
        return response


class NumpyModelServer:
    """Start/stop one server on a loopback port (use as a context manager)."""

    def __init__(self, model: FakeModel | None = None, host: str = "127.0.0.1"):
        self.model = model or FakeModel()
        self.service = NumpyPredictionService(self.model)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self.service, self.server)
        self.port = self.server.add_insecure_port(f"{host}:0" if ":" not in host else f"[{host}]:0")
        self.target = f"{host}:{self.port}" if ":" not in host else f"[{host}]:{self.port}"

    def __enter__(self) -> NumpyModelServer:
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.stop(grace=None).wait(5)
