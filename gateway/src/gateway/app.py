"""The Flask app: routes, request parsing, request ids, access logs and metrics around them."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from gateway.classifier import Classifier
from gateway.errors import GatewayError, bad_request, error_response, register_error_handlers
from gateway.fetch import ImageFetcher
from gateway.imaging import configure_pillow
from gateway.logs import request_id_var
from gateway.metrics import GatewayMetrics
from gateway.model_client import ModelClient
from gateway.settings import Settings

log = logging.getLogger("gateway.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_MAX_TOP_K = 1000


def create_app(
    settings: Settings, model_client: ModelClient | None = None, start_refresh: bool = True
) -> Flask:
    """Build the gateway app. It owns its gRPC channel (unless given one) and metrics registry;
    `app.extensions["gateway"]["model"].close()` stops the metadata refresh and the channel."""
    configure_pillow(settings.max_image_pixels)
    app = Flask("gateway")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # keep the model's class order / top-k order
    app.json.compact = True

    metrics = GatewayMetrics()
    model = model_client or ModelClient(settings)
    classifier = Classifier(settings, model, metrics)
    fetcher = ImageFetcher(settings)
    readiness = _Readiness(model, settings.ready_cache_seconds)
    app.extensions["gateway"] = {"model": model, "metrics": metrics, "settings": settings}
    register_error_handlers(app)

    @app.before_request
    def _start():
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        g.token = request_id_var.set(g.request_id)
        g.started = time.perf_counter()
        metrics.request_started()

    @app.after_request
    def _finish(response: Response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.answered(route, request.method, response.status_code, elapsed)
        if response.status_code >= 400 and response.is_json:
            code = (response.get_json(silent=True) or {}).get("error", {}).get("code", "unknown")
            metrics.errors.labels(code).inc()
        response.headers["X-Request-ID"] = g.get("request_id", "-")
        if route not in ("/healthz", "/readyz", "/metrics") or response.status_code >= 400:
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round(elapsed * 1000, 2),
                        "bytes_in": request.content_length or 0,
                    }
                },
            )
        return response

    @app.teardown_request
    def _teardown(_error):
        if "started" in g:
            metrics.request_finished()
        token = g.get("token")
        if token is not None:
            request_id_var.reset(token)

    @app.post("/predict")
    def predict():
        image, top_k = _read_input(fetcher, metrics)
        scores, version = classifier.classify(image, top_k)
        # The body keeps the lesson's shape ({label: score}); the version that answered goes in a
        # header, so clients and rollouts can tell which model version served each request.
        return scores, {"X-Model-Version": str(version)}

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():
        if app.extensions["gateway"].get("draining"):
            return error_response(503, "shutting_down", "the gateway is draining after SIGTERM")
        ready, detail = readiness.check()
        if not ready:
            return error_response(503, "not_ready", detail)
        return {"status": "ready", **detail}

    @app.get("/metrics")
    def metrics_endpoint():
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type)

    if settings.url_prefix:
        app.wsgi_app = _StripPrefix(app.wsgi_app, settings.url_prefix)
    if start_refresh:
        model.start_refresh()
    return app


class _StripPrefix:
    """Serve the API under URL_PREFIX too (an Ingress that routes <prefix>/predict and passes the
    path on unchanged), while probes keep using the bare paths."""

    def __init__(self, app, prefix: str):
        self.app, self.prefix = app, prefix

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
        return self.app(environ, start_response)


def _read_input(fetcher: ImageFetcher, metrics: GatewayMetrics) -> tuple[bytes, int | None]:
    """The image bytes and top_k from a JSON body, a multipart upload or a raw image body."""
    content_type = request.mimetype or ""
    if content_type == "multipart/form-data":
        upload = request.files.get("file") or next(iter(request.files.values()), None)
        if upload is None:
            raise bad_request("missing_image", "multipart body has no file part (use the field name 'file')")
        return upload.read(), _parse_top_k(request.form.get("top_k"))
    if content_type.startswith("image/") or content_type == "application/octet-stream":
        return request.get_data(cache=False), _parse_top_k(request.args.get("top_k"))

    try:
        body = request.get_json(force=True, silent=True)
    except RecursionError:  # not a ValueError, so `silent` lets it through: [[[[...]]]] x 100,000
        raise bad_request("invalid_json", "JSON body is nested too deeply") from None
    if body is None:
        raise bad_request(
            "invalid_json", 'body must be JSON like {"url": "https://..."} or {"image": "<base64>"}'
        )
    if not isinstance(body, dict):
        raise bad_request("invalid_request", "JSON body must be an object")
    unknown = set(body) - {"url", "image", "top_k"}
    if unknown:
        raise bad_request("invalid_request", f"unknown field(s): {', '.join(sorted(unknown))}")
    top_k = _parse_top_k(body.get("top_k"))
    has_url, has_image = "url" in body, "image" in body
    if has_url == has_image:
        raise bad_request("invalid_request", 'give exactly one of "url" or "image"')
    if has_image:
        return _decode_base64(body["image"]), top_k
    if not isinstance(body["url"], str):
        raise bad_request("invalid_url", "url must be a string")
    with metrics.stage("fetch"):
        data = fetcher.fetch(body["url"])
    metrics.fetched_bytes.inc(len(data))
    return data, top_k


def _decode_base64(value) -> bytes:
    if not isinstance(value, str) or not value:
        raise bad_request("invalid_base64", "image must be a non-empty base64 string")
    if value.startswith("data:"):
        _, _, value = value.partition(",")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("invalid_base64", "image is not valid base64") from None


def _parse_top_k(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise bad_request("invalid_top_k", "top_k must be a positive integer")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= _MAX_TOP_K:
        raise bad_request("invalid_top_k", f"top_k must be an integer from 1 to {_MAX_TOP_K}")
    return value


class _Readiness:
    """GetModelMetadata answered recently enough, cached so probes don't hammer the server."""

    def __init__(self, model: ModelClient, ttl: float):
        self.model = model
        self.ttl = ttl
        self._checked_at = float("-inf")
        self._result: tuple[bool, object] = (False, "not checked yet")

    def check(self) -> tuple[bool, object]:
        now = time.monotonic()
        if now - self._checked_at < self.ttl:
            return self._result
        try:
            sig = self.model.refresh_signature()
            result = (
                True,
                {"model_version": sig.version, "input": sig.input_name, "scores": sig.scores_output},
            )
        except GatewayError as error:
            result = (False, error.message)
        self._checked_at, self._result = time.monotonic(), result
        return result
