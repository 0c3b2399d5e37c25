"""The gRPC side, on grpc.aio in the gateway's event loop: one channel per process, signature
discovery, Predict, status mapping.

The channel balances with `round_robin` over every address the target resolves to (a
`dns:///model-server-headless:8500` target reaches every model pod, an `ipv4:a:p,b:p` target
both listed servers), pings idle-but-busy connections (keepalive) and retries UNAVAILABLE through
gRPC's service config, so a request that lands on a pod going away is retried on another.

Tensor names, input dtype and image size come from GetModelMetadata at start, on a refresh
interval, and immediately when the server rejects a request's input (a re-exported model), never
from constants.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

import grpc
import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from gateway.errors import GatewayError
from gateway.settings import Settings
from gateway.tensors import FLOAT_TYPES, NUMERIC_TYPES, dtype_name, encode_predict_request, from_tensor_proto

log = logging.getLogger("gateway.model")

_SERVICE = "tensorflow.serving.PredictionService"
PREDICT_METHOD = f"/{_SERVICE}/Predict"
_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": _SERVICE}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)
# The largest Predict request or response the gateway handles (a float32 image of ~2300x2300).
_LARGEST_MESSAGE = 64 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    # Keepalive only while calls are in flight: TF Serving's gRPC server answers pings on idle
    # connections more often than every 5 minutes with GOAWAY (too_many_pings).
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.max_receive_message_length", _LARGEST_MESSAGE),
    # gRPC retries a call only while its request fits the per-call retry buffer, 256 KiB by
    # default: a Predict of the demo model's 299x299 uint8 image is 268 KB (float32 1 MB), so
    # the retry policy above never applied to one. Buffering keeps a reference to the request
    # already serialized, not a copy.
    ("grpc.per_rpc_retry_buffer_size", _LARGEST_MESSAGE),
    # Re-resolve DNS at most every 10 s when a connection drops (new pods of a scaled Deployment).
    ("grpc.dns_min_time_between_resolutions_ms", 10_000),
    # gRPC's default reconnect backoff grows 1 s x1.6 up to 120 s: after a 10 s model-server
    # outage the gateway kept answering 503 for ~4 s more, after a minute for up to ~40 s.
    # Retry a lost connection every <= 1 s instead (tests/reliability/test_faults.py).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]
_INPUT_DTYPES = {types_pb2.DT_FLOAT: "float32", types_pb2.DT_UINT8: "uint8"}


@dataclass(frozen=True)
class ModelSignature:
    """What the gateway needs to know about the served model, discovered from the server."""

    version: int
    input_name: str
    input_dtype: str  # "float32" | "uint8"
    width: int
    height: int
    scores_output: str
    labels_output: str | None


class ModelClient:
    """One per event loop (grpc.aio): made on the loop, closed on it."""

    def __init__(self, settings: Settings, channel: grpc.aio.Channel | None = None):
        self.settings = settings
        self.channel = channel or grpc.aio.insecure_channel(
            settings.tf_serving_host, options=_CHANNEL_OPTIONS
        )
        # Predict takes the request already serialized (tensors.encode_predict_request).
        self._predict = self.channel.unary_unary(
            PREDICT_METHOD,
            request_serializer=None,
            response_deserializer=predict_pb2.PredictResponse.FromString,
        )
        self._metadata = self.channel.unary_unary(
            f"/{_SERVICE}/GetModelMetadata",
            request_serializer=get_model_metadata_pb2.GetModelMetadataRequest.SerializeToString,
            response_deserializer=get_model_metadata_pb2.GetModelMetadataResponse.FromString,
        )
        self._signature: ModelSignature | None = None
        self._refresher: asyncio.Task | None = None

    # ---- discovery -------------------------------------------------------------------------
    async def signature(self) -> ModelSignature:
        """The cached signature, discovering it first if the gateway has none yet."""
        current = self._signature
        return current if current is not None else await self.refresh_signature()

    async def refresh_signature(self) -> ModelSignature:
        try:
            response = await self._metadata(
                metadata_request(self.settings), timeout=self.settings.grpc_timeout_seconds
            )
        except grpc.RpcError as error:
            raise map_rpc_error(error, self.settings.model_name) from None
        signature = parse_signature(response, self.settings)
        if signature != self._signature:
            log.info("model signature discovered", extra={"fields": signature.__dict__})
        self._signature = signature
        return signature

    def start_refresh(self) -> None:
        """Refresh the signature every METADATA_REFRESH_SECONDS in a task on the running loop."""
        if self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await self.refresh_signature()
            except GatewayError as error:
                log.warning(
                    "model metadata refresh failed",
                    extra={"fields": {"code": error.code, "error": error.message}},
                )
            except Exception:  # keep refreshing whatever happened; the log has the traceback
                log.exception("model metadata refresh crashed")
            await asyncio.sleep(self.settings.metadata_refresh_seconds)

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        await self.channel.close()

    # ---- inference -------------------------------------------------------------------------
    async def predict(
        self, signature: ModelSignature, batch: np.ndarray
    ) -> tuple[np.ndarray, list[str] | None, int]:
        """Scores `[N]` of the first batch item, the model's labels (when it carries them) and the
        model version that answered."""
        request, wants_labels = predict_request(self.settings, signature, batch)
        try:
            response = await self._predict(request, timeout=self.settings.grpc_timeout_seconds)
        except grpc.RpcError as error:
            raise map_rpc_error(error, self.settings.model_name) from None
        return read_prediction(response, signature, wants_labels)


def metadata_request(settings: Settings) -> get_model_metadata_pb2.GetModelMetadataRequest:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = settings.model_name
    request.metadata_field.append("signature_def")
    return request


def predict_request(settings: Settings, signature: ModelSignature, batch: np.ndarray) -> tuple[bytes, bool]:
    """The serialized PredictRequest for `batch`, and whether it asks for the labels output."""
    wants_labels = signature.labels_output is not None and not settings.labels
    outputs = [signature.scores_output] + ([signature.labels_output] if wants_labels else [])
    request = encode_predict_request(
        settings.model_name, settings.model_signature, signature.input_name, batch, outputs
    )
    return request, wants_labels


def read_prediction(
    response: predict_pb2.PredictResponse, signature: ModelSignature, wants_labels: bool
) -> tuple[np.ndarray, list[str] | None, int]:
    """Scores `[N]` of the first batch item, the labels if asked for and present, the version."""
    try:
        scores = from_tensor_proto(response.outputs[signature.scores_output])
        labels = None
        if wants_labels and signature.labels_output in response.outputs:
            labels = [
                str(v)
                for v in from_tensor_proto(response.outputs[signature.labels_output]).reshape(
                    -1, scores.shape[-1]
                )[0]
            ]
    except (ValueError, KeyError, IndexError) as error:
        raise GatewayError(502, "model_bad_response", f"model response cannot be read: {error}") from None
    if scores.ndim == 0 or scores.shape[0] != 1:
        raise GatewayError(
            502, "model_bad_response", f"scores output has shape {list(scores.shape)}, expected [1, N]"
        )
    return scores.reshape(1, -1)[0].astype(np.float64), labels, int(response.model_spec.version.value)


def parse_signature(
    response: get_model_metadata_pb2.GetModelMetadataResponse, settings: Settings
) -> ModelSignature:
    def unusable(reason: str) -> GatewayError:
        return GatewayError(503, "model_signature_unusable", f"model {settings.model_name!r}: {reason}")

    signature_map = get_model_metadata_pb2.SignatureDefMap()
    if "signature_def" not in response.metadata or not response.metadata["signature_def"].Unpack(
        signature_map
    ):
        raise unusable("GetModelMetadata returned no signature_def")
    if settings.model_signature not in signature_map.signature_def:
        found = ", ".join(sorted(signature_map.signature_def)) or "none"
        raise unusable(f"no signature {settings.model_signature!r} (found: {found})")
    sig = signature_map.signature_def[settings.model_signature]

    if len(sig.inputs) != 1:
        raise unusable(f"signature has {len(sig.inputs)} inputs, the gateway feeds exactly one image input")
    input_name, input_info = next(iter(sig.inputs.items()))
    if input_info.dtype not in _INPUT_DTYPES:
        raise unusable(
            f"input {input_name!r} has dtype {dtype_name(input_info.dtype)}, expected DT_FLOAT or DT_UINT8"
        )
    dims = [int(d.size) for d in input_info.tensor_shape.dim]
    if input_info.tensor_shape.unknown_rank or len(dims) != 4 or dims[3] not in (3, -1):
        raise unusable(f"input {input_name!r} has shape {dims}, expected [batch, height, width, 3]")
    height, width = dims[1], dims[2]
    if height <= 0 or width <= 0:
        if settings.image_size is None:
            raise unusable(f"input {input_name!r} has a dynamic image size {dims}; set IMAGE_SIZE")
        width, height = settings.image_size

    strings = sorted(name for name, info in sig.outputs.items() if info.dtype == types_pb2.DT_STRING)
    numeric = sorted(name for name, info in sig.outputs.items() if info.dtype in NUMERIC_TYPES)
    if settings.scores_output:
        if settings.scores_output not in numeric:
            raise unusable(
                f"MODEL_SCORES_OUTPUT={settings.scores_output!r} is not a numeric output (have: {numeric})"
            )
        scores = settings.scores_output
    else:
        floats = [name for name in numeric if sig.outputs[name].dtype in FLOAT_TYPES]
        if len(floats) != 1:
            raise unusable(f"expected one float scores output, found {floats}; set MODEL_SCORES_OUTPUT")
        scores = floats[0]
    labels = "labels" if "labels" in strings else (strings[0] if len(strings) == 1 else None)
    return ModelSignature(
        version=int(response.model_spec.version.value),
        input_name=input_name,
        input_dtype=_INPUT_DTYPES[input_info.dtype],
        width=width,
        height=height,
        scores_output=scores,
        labels_output=labels,
    )


_STATUS_MAP = {
    grpc.StatusCode.UNAVAILABLE: (503, "model_unavailable", "the model server is unreachable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "model_timeout", "the model server did not answer in time"),
    grpc.StatusCode.INVALID_ARGUMENT: (502, "model_rejected_input", "the model server rejected the request"),
    grpc.StatusCode.NOT_FOUND: (503, "model_not_found", "the model server does not serve the model"),
    grpc.StatusCode.FAILED_PRECONDITION: (503, "model_unavailable", "the model is not ready"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (503, "model_overloaded", "the model server is overloaded"),
}


def map_rpc_error(error: grpc.RpcError, model_name: str) -> GatewayError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else None) or ""
    status, name, summary = _STATUS_MAP.get(code, (502, "model_error", "the model server failed"))
    message = f"{summary} (model {model_name!r}, gRPC {code.name}: {details[:300]})"
    gateway_error = GatewayError(status, name, message)
    gateway_error.grpc_code = code.name
    return gateway_error
