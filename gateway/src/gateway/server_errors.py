"""JSON for the errors waitress answers itself.

Malformed HTTP (bad Content-Length or chunk framing, headers over waitress's limit, a body over
its max_request_body_size) never reaches Flask: waitress writes a text/plain answer of its own.
Clients of the gateway get one error shape whatever failed, so the channel's error task renders
`{"error": {"code", "message"}}` instead (tests/reliability/test_hostile_input.py).
"""

from __future__ import annotations

import json

from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

_CODES = {
    400: "bad_request",
    413: "request_too_large",
    431: "request_headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}


class JsonErrorTask(ErrorTask):
    def execute(self):
        error = self.request.error
        message = f"{error.reason}: {error.body}" if error.body else error.reason
        body = json.dumps(
            {"error": {"code": _CODES.get(error.code, "bad_request"), "message": message}}
        ).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(HTTPChannel):
    error_task_class = JsonErrorTask


def use_json_errors(server) -> None:
    """Make `server` (from waitress.create_server) answer its own errors as JSON."""
    server.channel_class = JsonErrorChannel
