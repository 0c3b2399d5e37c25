"""REST side of `model serve` (TF Serving's /v1 API) on the standard library's HTTP server.

GET  /v1/models/<name>[/versions/<v>|/labels/<l>]            model status
GET  /v1/models/<name>[/versions/<v>|/labels/<l>]/metadata   signature defs (JSON)
POST /v1/models/<name>[/versions/<v>|/labels/<l>]:predict    row ("instances") or columnar ("inputs")
GET  <prometheus path>                                        when the monitoring config enables it
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from model_tools import DEFAULT_SIGNATURE, tensor_codec
from model_tools.status import ServingError

log = logging.getLogger("model_tools.serve")
MAX_BODY_BYTES = 512 * 1024 * 1024
_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<rest>/metadata|:predict)?$"
)


def _decode_value(value, want):
    """JSON value -> numpy array of the signature's dtype ({"b64": ...} for binary strings)."""
    if want is object:

        def strings(v):
            if isinstance(v, list):
                return [strings(x) for x in v]
            if isinstance(v, dict) and set(v) == {"b64"}:
                return base64.b64decode(v["b64"])
            return str(v).encode()

        return np.array(strings(value), dtype=object)
    try:
        return np.array(value, dtype=want)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ServingError("INVALID_ARGUMENT", f"Failed to process element: {exc}") from exc


def parse_predict_body(body: dict, signature) -> tuple[dict, bool]:
    """-> ({input alias: ndarray}, row_format)."""
    if not isinstance(body, dict):
        raise ServingError("INVALID_ARGUMENT", "Request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise ServingError(
            "INVALID_ARGUMENT",
            'Missing "instances" or "inputs" key'
            if "instances" not in body
            else 'Not both "instances" and "inputs" can be specified',
        )
    aliases = sorted(signature.inputs)
    dtypes = {a: tensor_codec.numpy_dtype(signature.inputs[a].dtype) for a in aliases}
    if "inputs" in body:
        value = body["inputs"]
        if isinstance(value, dict) and set(value) != {"b64"}:
            named = value
        else:
            if len(aliases) != 1:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"inputs must be a JSON object keyed by the signature's inputs {{{','.join(aliases)}}}",
                )
            named = {aliases[0]: value}
        return {k: _decode_value(v, dtypes.get(k, np.float32)) for k, v in named.items()}, False
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise ServingError("INVALID_ARGUMENT", '"instances" must be a non-empty JSON list')
    if all(isinstance(i, dict) and set(i) != {"b64"} for i in instances):
        keys = set(instances[0])
        if any(set(i) != keys for i in instances):
            raise ServingError("INVALID_ARGUMENT", "every instance must name the same inputs")
        return {k: _decode_value([i[k] for i in instances], dtypes.get(k, np.float32)) for k in keys}, True
    if len(aliases) != 1:
        raise ServingError(
            "INVALID_ARGUMENT",
            f"instances must be JSON objects keyed by the signature's inputs {{{','.join(aliases)}}}",
        )
    return {aliases[0]: _decode_value(instances, dtypes[aliases[0]])}, True


def _jsonable(alias: str, array: np.ndarray):
    if array.dtype == object or array.dtype.kind in ("S", "U"):
        binary = alias.endswith("_bytes")  # TF Serving's convention for binary string outputs

        def convert(v):
            if isinstance(v, list):
                return [convert(x) for x in v]
            if binary:
                return {"b64": base64.b64encode(v).decode()}
            return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)

        return convert(array.tolist())
    return array.tolist()


def format_predictions(outputs: dict, row_format: bool) -> dict:
    if not row_format:
        if len(outputs) == 1:
            return {"outputs": _jsonable(*next(iter(outputs.items())))}
        return {"outputs": {k: _jsonable(k, v) for k, v in outputs.items()}}
    converted = {k: _jsonable(k, v) for k, v in outputs.items()}
    if len(converted) == 1:
        return {"predictions": next(iter(converted.values()))}
    batch = len(next(iter(converted.values())))
    return {"predictions": [{k: v[i] for k, v in converted.items()} for i in range(batch)]}


def _signature_json(servable) -> dict:
    from google.protobuf import json_format

    return {
        k: json_format.MessageToDict(
            v, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        for k, v in servable.signature_defs.items()
    }


class _Handler(BaseHTTPRequestHandler):
    server_version = "model-serve"
    protocol_version = "HTTP/1.1"
    app: RestApp  # set on the subclass

    def log_message(self, fmt, *args):  # route access logs to our logger, at debug level
        log.debug("rest %s - %s", self.address_string(), fmt % args)

    def _send(self, status: int, payload, content_type="application/json"):
        data = payload if isinstance(payload, bytes) else json.dumps(payload, indent=1).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str):
        try:
            status, payload, content_type = self.app.handle(method, self.path, self._body(method))
        except ServingError as error:
            status, payload, content_type = error.http_status, {"error": error.message}, None
        except Exception:  # a bug must still answer JSON, not a stack trace
            log.exception("REST request failed")
            status, payload, content_type = 500, {"error": "Internal error"}, None
        self._send(status, payload, content_type or "application/json")

    def _body(self, method: str) -> bytes:
        if method != "POST":
            return b""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ServingError("RESOURCE_EXHAUSTED", f"request body over {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length)


class RestApp:
    def __init__(self, manager, metrics, prometheus_path: str | None):
        self.manager, self.metrics, self.prometheus_path = manager, metrics, prometheus_path

    def handle(self, method: str, path: str, body: bytes):
        path = path.split("?", 1)[0]
        if self.prometheus_path and method == "GET" and path == self.prometheus_path:
            return 200, self.metrics.render(self.manager).encode(), "text/plain; version=0.0.4"
        match = _MODEL_PATH.match(path)
        rest = match and match["rest"]
        if not match or (method == "GET") == (rest == ":predict"):
            raise ServingError("NOT_FOUND", f"Malformed request: {method} {path}")
        name, label = match["name"], match["label"]
        version = int(match["version"]) if match["version"] else None
        if rest is None:
            if name not in self.manager.models:
                raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
            rows = self.manager.model(name).status(version)
            return (
                200,
                {
                    "model_version_status": [
                        {
                            "version": str(v),
                            "state": state,
                            "status": {"error_code": code, "error_message": message},
                        }
                        for v, state, code, message in rows
                    ]
                },
                None,
            )
        servable = self.manager.get(name, version, label)
        if rest == "/metadata":
            return (
                200,
                {
                    "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
                    "metadata": {"signature_def": {"signature_def": _signature_json(servable)}},
                },
                None,
            )
        return 200, self._predict(servable, body), None

    def _predict(self, servable, body: bytes) -> dict:
        started = time.perf_counter()
        try:
            try:
                request = json.loads(body or b"null")
            except ValueError as exc:
                raise ServingError("INVALID_ARGUMENT", f"JSON Parse error: {exc}") from exc
            signature_name = (
                request.get("signature_name") if isinstance(request, dict) else None
            ) or DEFAULT_SIGNATURE
            if signature_name not in servable.signature_defs:
                raise ServingError(
                    "FAILED_PRECONDITION", f'Serving signature key "{signature_name}" not found.'
                )
            inputs, row_format = parse_predict_body(request, servable.signature_defs[signature_name])
            outputs = servable.predict(inputs, signature_name)
        except ServingError as error:
            self.metrics.record(servable.name, "predict", error.code, 0.0, "REST")
            raise
        self.metrics.record(servable.name, "predict", "OK", time.perf_counter() - started, "REST")
        return format_predictions(outputs, row_format)


def start_rest(manager, metrics, host: str, port: int, prometheus_path: str | None):
    """Start the REST server in a thread; returns (server, bound port)."""
    handler = type("Handler", (_Handler,), {"app": RestApp(manager, metrics, prometheus_path)})
    server_class = ThreadingHTTPServer
    if ":" in host:
        import socket

        server_class = type("V6Server", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    server = server_class((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="rest", daemon=True).start()
    return server, server.server_address[1]
