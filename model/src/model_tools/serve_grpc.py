"""gRPC side of `model serve`: PredictionService (Predict, GetModelMetadata) and ModelService
(GetModelStatus), with TF Serving's status codes and messages."""

from __future__ import annotations

import logging
import time
from concurrent import futures

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from model_tools import DEFAULT_SIGNATURE, tensor_codec
from model_tools.status import ServingError

log = logging.getLogger("model_tools.serve")
_STATE_ENUM = {"AVAILABLE": 30, "END": 50, "LOADING": 20}
_ERROR_ENUM = {"OK": 0, "UNKNOWN": 2}


def _version_of(model_spec) -> tuple[int | None, str | None]:
    version = model_spec.version.value if model_spec.HasField("version") else None
    return version, (model_spec.version_label or None)


def _abort(context, error: ServingError):
    context.abort(getattr(grpc.StatusCode, error.code), error.message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager, metrics):
        self.manager = manager
        self.metrics = metrics

    def Predict(self, request, context):
        started = time.perf_counter()
        name = request.model_spec.name
        try:
            servable = self.manager.get(name, *_version_of(request.model_spec))
            inputs = {alias: tensor_codec.to_numpy(t) for alias, t in request.inputs.items()}
            outputs = servable.predict(inputs, request.model_spec.signature_name, request.output_filter)
        except ServingError as error:
            self.metrics.record(name, "Predict", error.code, time.perf_counter() - started)
            _abort(context, error)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        for alias, value in outputs.items():
            tensor_codec.to_proto(value, response.outputs[alias])
        self.metrics.record(name, "Predict", "OK", time.perf_counter() - started)
        return response

    def GetModelMetadata(self, request, context):
        name = request.model_spec.name
        try:
            if not request.metadata_field:
                raise ServingError(
                    "INVALID_ARGUMENT", "GetModelMetadataRequest must specify at least one metadata_field"
                )
            for field in request.metadata_field:
                if field != "signature_def":
                    raise ServingError("INVALID_ARGUMENT", f"Metadata field {field} is not supported")
            servable = self.manager.get(name, *_version_of(request.model_spec))
        except ServingError as error:
            self.metrics.record(name, "GetModelMetadata", error.code, 0.0)
            _abort(context, error)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response.metadata["signature_def"].Pack(signature_map)
        self.metrics.record(name, "GetModelMetadata", "OK", 0.0)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager):
        self.manager = manager

    def GetModelStatus(self, request, context):
        version, _ = _version_of(request.model_spec)
        try:
            if request.model_spec.name not in self.manager.models:
                raise ServingError(
                    "NOT_FOUND", f"Could not find any versions of model {request.model_spec.name}"
                )
            rows = self.manager.model(request.model_spec.name).status(version)
        except ServingError as error:
            _abort(context, error)
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, state, code, message in rows:
            status = response.model_version_status.add()
            status.version = number
            status.state = _STATE_ENUM[state]
            status.status.error_code = _ERROR_ENUM.get(code, 2)
            status.status.error_message = message
        return response

    def HandleReloadConfigRequest(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "model serve does not reload its model config over gRPC")


def start_grpc(manager, metrics, host: str, port: int, max_workers: int = 16, channel_arguments=()):
    """Start the gRPC server; returns (server, bound port). `channel_arguments` are gRPC core
    server arguments (TF Serving's --grpc_channel_arguments), e.g. grpc.max_connection_age_ms."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", 2**31 - 1),
            ("grpc.max_send_message_length", 2**31 - 1),
            ("grpc.so_reuseport", 0),
            *channel_arguments,
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, metrics), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:  # newer grpcio raises instead of returning 0
        raise OSError(f"cannot listen on {address} (gRPC): {exc}") from exc
    if bound == 0:
        raise OSError(f"cannot listen on {address} (gRPC)")
    server.start()
    return server, bound
