"""An instant model server: TF Serving's gRPC API answering without running a model.

The benchmark measures gateways, so the model server must cost next to nothing: Predict checks the
request is what a real `clothing-model` would accept (name, input tensor name, dtype, shape,
payload size) and answers a fixed [batch, 10] float32 scores tensor in `float_val`, as TF Serving
does. It counts Predict calls and request bytes per process in shared memory, so the harness can
read the spread over replicas and the tensor bytes per request.
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent import futures

import grpc
from google.protobuf import wrappers_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

MODEL_NAME = "clothing-model"
SIGNATURE_NAME = "serving_default"
# The tensor names of the lesson's SavedModel, which its gateway (bench/baseline) hard-codes.
INPUT_NAME = "input_8"
OUTPUT_NAME = "dense_7"
IMAGE_SIZE = 299
NUM_CLASSES = 10
DTYPES = {"float32": (types_pb2.DT_FLOAT, 4), "uint8": (types_pb2.DT_UINT8, 1)}
SCORES = [float(i) - 4.5 for i in range(NUM_CLASSES)]  # logits-like, distinct per class

# Indices into the shared counter array: Predict calls, raw tensor payload bytes (the pixels),
# the input TensorProto's serialized bytes, the whole request's serialized bytes.
PREDICTS, PAYLOAD_BYTES, INPUT_BYTES, REQUEST_BYTES = range(4)
COUNTERS = 4


def _shape(*dims: int) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]
    )


def signature_def_map(input_dtype: str) -> get_model_metadata_pb2.SignatureDefMap:
    """What TF Serving's GetModelMetadata reports for the lesson's Keras SavedModel."""
    sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    sig.inputs[INPUT_NAME].CopyFrom(
        meta_graph_pb2.TensorInfo(
            name=f"serving_default_{INPUT_NAME}:0",
            dtype=DTYPES[input_dtype][0],
            tensor_shape=_shape(-1, IMAGE_SIZE, IMAGE_SIZE, 3),
        )
    )
    sig.outputs[OUTPUT_NAME].CopyFrom(
        meta_graph_pb2.TensorInfo(
            name="StatefulPartitionedCall:0", dtype=types_pb2.DT_FLOAT, tensor_shape=_shape(-1, NUM_CLASSES)
        )
    )
    init = meta_graph_pb2.SignatureDef()
    init.outputs["__saved_model_init_op"].CopyFrom(
        meta_graph_pb2.TensorInfo(
            name="NoOp", tensor_shape=tensor_shape_pb2.TensorShapeProto(unknown_rank=True)
        )
    )
    result = get_model_metadata_pb2.SignatureDefMap()
    result.signature_def[SIGNATURE_NAME].CopyFrom(sig)
    result.signature_def["__saved_model_init_op"].CopyFrom(init)
    return result


class InstantPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, input_dtype: str, counters):
        self._dtype, self._itemsize = DTYPES[input_dtype]
        self._metadata = signature_def_map(input_dtype)
        self._counters = counters

    def _check_model(self, spec, context):
        if spec.name != MODEL_NAME:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found: {spec.name}")

    def Predict(self, request, context):
        self._check_model(request.model_spec, context)
        if request.model_spec.signature_name not in ("", SIGNATURE_NAME):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "Serving signature not found")
        if set(request.inputs) != {INPUT_NAME}:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"expected input {INPUT_NAME}")
        tensor = request.inputs[INPUT_NAME]
        dims = [d.size for d in tensor.tensor_shape.dim]
        if tensor.dtype != self._dtype or len(dims) != 4 or dims[1:] != [IMAGE_SIZE, IMAGE_SIZE, 3]:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"expected dtype {self._dtype} [-1,{IMAGE_SIZE},{IMAGE_SIZE},3], "
                f"got dtype {tensor.dtype} {dims}",
            )
        batch = dims[0]
        expected = batch * IMAGE_SIZE * IMAGE_SIZE * 3
        values = (
            len(tensor.tensor_content) // self._itemsize
            if tensor.tensor_content
            else max(len(tensor.float_val), len(tensor.int_val))
        )
        if values != expected:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"input holds {values} values, shape needs {expected}"
            )
        with self._counters.get_lock():
            self._counters[PREDICTS] += 1
            self._counters[PAYLOAD_BYTES] += values * self._itemsize
            self._counters[INPUT_BYTES] += tensor.ByteSize()
            self._counters[REQUEST_BYTES] += request.ByteSize()
        scores = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=_shape(batch, NUM_CLASSES))
        scores.float_val.extend(SCORES * batch)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = MODEL_NAME
        response.model_spec.version.value = 1
        response.model_spec.signature_name = SIGNATURE_NAME
        response.outputs[OUTPUT_NAME].CopyFrom(scores)
        return response

    def GetModelMetadata(self, request, context):
        self._check_model(request.model_spec, context)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = MODEL_NAME
        response.model_spec.version.CopyFrom(wrappers_pb2.Int64Value(value=1))
        response.metadata["signature_def"].Pack(self._metadata)
        return response


class InstantModelService(model_service_pb2_grpc.ModelServiceServicer):
    def GetModelStatus(self, request, context):
        if request.model_spec.name != MODEL_NAME:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found: {request.model_spec.name}")
        status = get_model_status_pb2.ModelVersionStatus(
            version=1, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE
        )
        return get_model_status_pb2.GetModelStatusResponse(model_version_status=[status])


def serve(port: int, input_dtype: str, counters, bound_port=None, ready=None) -> None:
    """Run the instant model server on 127.0.0.1:`port` (0 = any free port) until killed."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16),
        options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.so_reuseport", 0)],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        InstantPredictionService(input_dtype, counters), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(InstantModelService(), server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    if bound_port is not None:
        bound_port.value = port
    if ready is not None:
        ready.set()
    server.wait_for_termination()


class Backend:
    """One instant model server in its own process, with its counters readable from here."""

    def __init__(self, input_dtype: str = "float32"):
        ctx = multiprocessing.get_context("spawn")  # no fork: the parent may hold gRPC threads
        self.input_dtype = input_dtype
        self._counters = ctx.Array("q", COUNTERS)
        self._port = ctx.Value("i", 0)
        self._ready = ctx.Event()
        self._process = ctx.Process(
            target=serve,
            args=(0, input_dtype, self._counters, self._port, self._ready),
            daemon=True,
            name=f"instant-backend-{input_dtype}",
        )

    def launch(self) -> Backend:
        """Start the process without waiting (importing the protos takes seconds; launch several
        backends, then wait for each)."""
        self._process.start()
        return self

    def wait_ready(self, timeout: float = 120.0) -> Backend:
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("instant backend did not start")
        return self

    def start(self, timeout: float = 120.0) -> Backend:
        return self.launch().wait_ready(timeout)

    @property
    def port(self) -> int:
        return self._port.value

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def counts(self) -> dict[str, int]:
        with self._counters.get_lock():
            values = list(self._counters)
        return {
            "predicts": values[PREDICTS],
            "payload_bytes": values[PAYLOAD_BYTES],
            "input_bytes": values[INPUT_BYTES],
            "request_bytes": values[REQUEST_BYTES],
        }

    def cpu_seconds(self) -> float:
        """CPU time the model server process has used so far (its share of the rig's cost)."""
        from bench.servers import process_cpu_seconds

        return process_cpu_seconds(self._process.pid)

    def reset(self) -> None:
        with self._counters.get_lock():
            for i in range(len(self._counters)):
                self._counters[i] = 0

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    args = parser.parse_args()
    counters = multiprocessing.Array("q", COUNTERS)
    print(f"instant model server on 127.0.0.1:{args.port} ({args.dtype} input)", flush=True)
    serve(args.port, args.dtype, counters)


if __name__ == "__main__":
    main()
