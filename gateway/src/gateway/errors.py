"""The error catalogue, one error type carrying its HTTP status and code, and its JSON body.

Every answer that is not a prediction is `{"error": {"code": ..., "message": ...}}`: aiohttp's
own 404/405/413 and its protocol-level errors included (app.py, server.py), and anything
unexpected becomes a 500 `internal_error` whose body says nothing about the code (the traceback
goes to the log with the request id).
"""

from __future__ import annotations

from aiohttp import web

# Every error code the gateway answers with: code -> (HTTP status, when). The one place they are
# written down: docs/gateway.md's table is generated from it (`make docs`), and a test checks
# that every status/code pair in the gateway's source is here and every entry is used.
ERRORS: dict[str, tuple[int, str]] = {
    "invalid_json": (400, "the body is not JSON (or is nested too deeply)"),
    "invalid_request": (
        400,
        "the JSON is not an object, has unknown fields, or has both or neither of `url` and `image`",
    ),
    "invalid_base64": (400, "`image` is not a non-empty base64 string"),
    "invalid_top_k": (400, "`top_k` is not an integer from 1 to 1000"),
    "missing_image": (400, "a multipart body without a file part"),
    "invalid_url": (400, "a URL that is not a string, not http(s), or malformed"),
    "bad_request": (400, "malformed HTTP (framing, Content-Length) or another client error"),
    "url_forbidden": (
        403,
        "the URL's address, port or credentials are refused by the fetch policy (also after a redirect)",
    ),
    "not_found": (404, "unknown path"),
    "method_not_allowed": (405, "wrong method (the `Allow` header lists the right ones)"),
    "request_timeout": (408, "the request body was not complete `server.BODY_SECONDS` after its headers"),
    "request_too_large": (413, "the body is over `MAX_REQUEST_BYTES`"),
    "image_too_large": (413, "the download is over `FETCH_MAX_BYTES`"),
    "image_too_many_pixels": (413, "the image is over `MAX_IMAGE_PIXELS`"),
    "unsupported_image": (
        415,
        "the bytes are not JPEG, PNG, GIF, BMP, WebP or AVIF (HEIC/HEIF is named as unsupported)",
    ),
    "unsupported_media_type": (415, "a request Content-Type the gateway does not read"),
    "invalid_image": (422, "a recognised format that cannot be decoded (truncated, corrupt)"),
    "request_headers_too_large": (431, "request headers over the server's limit"),
    "labels_mismatch": (500, "`LABELS` does not fit the model's output"),
    "internal_error": (500, "an unexpected bug (the traceback is in the log under the request id)"),
    "not_implemented": (501, "an HTTP feature the server does not implement (e.g. a transfer coding)"),
    "fetch_failed": (502, "the image URL answered non-200 or could not be reached"),
    "too_many_redirects": (502, "more than `FETCH_MAX_REDIRECTS` redirects"),
    "model_rejected_input": (
        502,
        "the model server answered INVALID_ARGUMENT (its message is included) even after rediscovery",
    ),
    "model_error": (502, "another gRPC error from the model server"),
    "model_bad_response": (502, "a model output that cannot be read (or non-finite scores)"),
    "model_unavailable": (
        503,
        "gRPC UNAVAILABLE or FAILED_PRECONDITION: the model server is unreachable or not ready",
    ),
    "model_not_found": (503, "gRPC NOT_FOUND: wrong `MODEL_NAME`, or the model is not loaded"),
    "model_overloaded": (503, "gRPC RESOURCE_EXHAUSTED"),
    "model_signature_unusable": (503, "a signature the gateway cannot feed"),
    "server_busy": (
        503,
        "the request bodies and downloaded images being held would pass `MAX_BUFFERED_BYTES` with this one (`Retry-After: 1`)",
    ),
    "not_ready": (503, "`/readyz`: the model server does not answer GetModelMetadata"),
    "shutting_down": (503, "`/readyz` while draining after SIGTERM"),
    "fetch_timeout": (504, "the download passed `FETCH_TIMEOUT_SECONDS`"),
    "model_timeout": (504, "gRPC DEADLINE_EXCEEDED"),
}


class GatewayError(Exception):
    """An answer to the client: HTTP status, a stable machine-readable code, a human message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def bad_request(code: str, message: str) -> GatewayError:
    return GatewayError(400, code, message)


# The code of an error the HTTP layer answers by status alone (aiohttp's own 404/405/413, and the
# protocol-level errors of server.py), not by a GatewayError.
HTTP_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    431: "request_headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}


def error_response(status: int, code: str, message: str, headers=None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)
