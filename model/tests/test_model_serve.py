"""`model serve` answers the gateway's gRPC calls (same stubs) and TF Serving's REST API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from model_tools_testing import TINY_LABELS, TINY_SHAPE, ServeProcess

from model_tools import preprocessing

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(converted, tmp_path_factory):
    monitoring = tmp_path_factory.mktemp("cfg") / "monitoring.config"
    monitoring.write_text(
        'prometheus_config {\n  enable: true,\n  path: "/monitoring/prometheus/metrics"\n}\n'
    )
    proc = ServeProcess(
        "--model_name=tiny",
        f"--model_base_path={converted['base'] / 'tiny'}",
        f"--monitoring_config_file={monitoring}",
        "--enable_batching=true",
        "--some_future_flag=1",
    )
    try:
        proc.wait_listening()
        yield proc
    finally:
        assert proc.stop() == 0, proc.log


@pytest.fixture(scope="module")
def stub(server):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _request(x, name="tiny", alias="pixels", signature="serving_default"):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    request.inputs[alias].CopyFrom(tf.make_tensor_proto(x))
    return request


def _rest(server, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_grpc_predict_equals_keras_predict(stub, tiny_models, rng):
    x = preprocessing.scale(rng.integers(0, 256, (3, *TINY_SHAPE)))
    response = stub.Predict(_request(x), timeout=30)
    logits = np.array(response.outputs["class_logits"].float_val).reshape(3, len(TINY_LABELS))
    assert [d.size for d in response.outputs["class_logits"].tensor_shape.dim] == [3, 4]
    assert np.max(np.abs(logits - tiny_models["model"].predict(x, verbose=0))) <= 1e-5
    labels = [v.decode() for v in response.outputs["labels"].string_val]
    assert labels == TINY_LABELS * 3
    assert response.model_spec.name == "tiny" and response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_grpc_metadata_packs_the_signature_def_map(stub):
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "tiny"
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    serving = signatures.signature_def["serving_default"]
    assert serving.inputs["pixels"].dtype == types_pb2.DT_FLOAT
    assert [d.size for d in serving.inputs["pixels"].tensor_shape.dim] == [-1, *TINY_SHAPE]
    assert serving.outputs["labels"].dtype == types_pb2.DT_STRING
    assert response.model_spec.version.value == 1


def test_grpc_model_status(server):
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "tiny"
        (status,) = stub.GetModelStatus(request, timeout=30).model_version_status
        assert status.version == 1
        assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
        request.model_spec.name = "nope"
        with pytest.raises(grpc.RpcError) as err:
            stub.GetModelStatus(request, timeout=30)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "change, code, message",
    [
        ({"name": "nope"}, grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
        (
            {"alias": "image"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "input tensor alias not found in signature: image. Inputs expected to be in the set {pixels}.",
        ),
        (
            {"signature": "other"},
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "other" not found.',
        ),
        (
            {"x": np.zeros((1, *TINY_SHAPE), np.uint8)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expects arg[0] to be float but uint8 is provided",
        ),
        (
            {"x": np.zeros((1, 5, 5, 3), np.float32)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "input tensor pixels has shape [1, 5, 5, 3]",
        ),
    ],
)
def test_grpc_errors_use_tf_serving_codes(stub, change, code, message):
    args = {"x": np.zeros((1, *TINY_SHAPE), np.float32), **change}
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(_request(**args), timeout=30)
    assert err.value.code() == code
    assert err.value.details().startswith(message)
    stub.Predict(_request(np.zeros((1, *TINY_SHAPE), np.float32)), timeout=30)  # still serving


def test_rest_status_and_metadata(server):
    assert _rest(server, "/v1/models/tiny") == (
        200,
        {
            "model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        },
    )
    status, body = _rest(server, "/v1/models/tiny/metadata")
    assert status == 200 and body["model_spec"] == {"name": "tiny", "signature_name": "", "version": "1"}
    serving = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert serving["inputs"]["pixels"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in serving["inputs"]["pixels"]["tensor_shape"]["dim"]] == ["-1", "12", "10", "3"]
    assert _rest(server, "/v1/models/nope") == (404, {"error": "Could not find any versions of model nope"})


def test_rest_predict_row_and_columnar(server, tiny_models, rng):
    x = preprocessing.scale(rng.integers(0, 256, (2, *TINY_SHAPE)))
    expected = tiny_models["model"].predict(x, verbose=0)
    status, rows = _rest(server, "/v1/models/tiny:predict", {"instances": x.tolist()})
    assert status == 200
    assert [r["labels"] for r in rows["predictions"]] == [TINY_LABELS, TINY_LABELS]
    got = np.array([r["class_logits"] for r in rows["predictions"]])
    assert np.max(np.abs(got - expected)) <= 1e-5
    status, columns = _rest(server, "/v1/models/tiny/versions/1:predict", {"inputs": {"pixels": x.tolist()}})
    assert status == 200
    assert np.max(np.abs(np.array(columns["outputs"]["class_logits"]) - expected)) <= 1e-5


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/v1/models/nope:predict", {"instances": [1]}, 404, "Servable not found for request: Latest(nope)"),
        (
            "/v1/models/tiny/versions/9:predict",
            {"instances": [1]},
            404,
            "Servable not found for request: Specific(tiny, 9)",
        ),
        ("/v1/models/tiny:predict", {"instances": [[1, 2]]}, 400, "input tensor pixels has shape"),
        (
            "/v1/models/tiny:predict",
            {"instances": [{"image": 1}]},
            400,
            "input tensor alias not found in signature: image",
        ),
        ("/v1/models/tiny:predict", {"foo": 1}, 400, 'Missing "instances" or "inputs" key'),
    ],
)
def test_rest_errors_are_json_with_tf_serving_status(server, path, body, status, message):
    got_status, got = _rest(server, path, body)
    assert got_status == status
    assert got["error"].startswith(message)


def test_prometheus_metrics_when_monitoring_config_enables_them(server, stub):
    stub.Predict(_request(np.zeros((1, *TINY_SHAPE), np.float32)), timeout=30)
    with urllib.request.urlopen(
        f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics", timeout=30
    ) as r:
        text = r.read().decode()
    counts = [
        line
        for line in text.splitlines()
        if line.startswith(':tensorflow:serving:request_count{model_name="tiny",status="OK"}')
    ]
    assert counts and int(counts[0].split()[-1]) >= 1


def test_unsupported_tf_serving_flags_are_accepted_and_logged(server):
    assert "--enable_batching is accepted" in server.log
    assert "unknown flag --some_future_flag=1 ignored" in server.log


def test_busy_port_is_a_clear_error(server, converted):
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_tools",
            "serve",
            "--host=127.0.0.1",
            f"--port={server.grpc_port}",
            "--rest_api_port=0",
            "--model_name=tiny",
            f"--model_base_path={converted['base'] / 'tiny'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "cannot start: cannot listen on 127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr
