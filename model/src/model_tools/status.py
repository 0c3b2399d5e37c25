"""TF Serving's error model: a canonical gRPC status code + message, and its HTTP status."""

from __future__ import annotations

# The REST API's mapping of canonical codes (TF Serving's ToHTTPStatusCode).
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


class ServingError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


def servable_not_found(name: str, version: int | None = None, label: str | None = None):
    if label:
        request = f"Specific({name}, label={label})"
    elif version is not None:
        request = f"Specific({name}, {version})"
    else:
        request = f"Latest({name})"
    return ServingError("NOT_FOUND", f"Servable not found for request: {request}")
