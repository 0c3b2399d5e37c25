"""Where the chart depends on how TF Serving behaves, `model serve` behaves the same way:
connections closed at their maximum age (--grpc_channel_arguments), SIGTERM ignored when asked
(as tensorflow_model_server does), and the readiness probe's contract (a model's status answers
200 in any state, a version's metadata only while that version is loaded)."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request

import grpc
import pytest
from model_tools_testing import ServeProcess

from model_tools.serve import parse_channel_arguments

pytestmark = pytest.mark.integration


def _status(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _connectivity_changes(port: int, seconds: float) -> list[grpc.ChannelConnectivity]:
    """The connectivity states one client channel goes through while it stays connected."""
    states: list[grpc.ChannelConnectivity] = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        channel.subscribe(states.append, try_to_connect=True)
        grpc.channel_ready_future(channel).result(timeout=10)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if states and states[-1] == grpc.ChannelConnectivity.IDLE:
                # A closed connection leaves the channel idle until it is used: use it again.
                grpc.channel_ready_future(channel).result(timeout=10)
            time.sleep(0.1)
        channel.unsubscribe(states.append)
    return states


def test_channel_arguments_parse_like_tf_serving():
    assert parse_channel_arguments(
        "grpc.max_connection_age_ms=30000, grpc.max_connection_age_grace_ms=10000"
    ) == (("grpc.max_connection_age_ms", 30000), ("grpc.max_connection_age_grace_ms", 10000))
    assert parse_channel_arguments("grpc.primary_user_agent=x") == (("grpc.primary_user_agent", "x"),)
    with pytest.raises(Exception, match="key=value"):
        parse_channel_arguments("grpc.max_connection_age_ms")


@pytest.mark.parametrize("max_age_ms", [None, 1500])
def test_server_closes_connections_at_their_maximum_age(converted, max_age_ms):
    flags = ["--model_name=tiny", f"--model_base_path={converted['base'] / 'tiny'}"]
    if max_age_ms:
        flags.append(
            f"--grpc_channel_arguments=grpc.max_connection_age_ms={max_age_ms},"
            "grpc.max_connection_age_grace_ms=500"
        )
    server = ServeProcess(*flags)
    try:
        server.wait_listening()
        states = _connectivity_changes(server.grpc_port, 6.0)
    finally:
        assert server.stop() == 0, server.log
    reconnects = states.count(grpc.ChannelConnectivity.READY)
    if max_age_ms:
        # Closed every ~1.5 s: the client reconnected (and so re-resolved) several times.
        assert reconnects >= 3, states
    else:
        assert reconnects == 1, states


def test_sigterm_is_ignored_like_tf_serving_when_asked(converted):
    server = ServeProcess(
        "--model_name=tiny", f"--model_base_path={converted['base'] / 'tiny'}", "--on_sigterm=ignore"
    )
    try:
        server.wait_listening()
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(2)
        assert server.proc.poll() is None, "the server stopped on SIGTERM"
        status, body = _status(f"http://127.0.0.1:{server.rest_port}/v1/models/tiny")
        assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
        assert "SIGTERM ignored" in server.log
    finally:
        server.proc.kill()
        server.proc.wait(30)
    assert server.proc.returncode == -signal.SIGKILL


def test_model_status_answers_200_but_a_missing_version_has_no_metadata(converted):
    # The chart's readiness probe asks for the pinned version's metadata: 404 unless that version
    # is loaded, while the model's status would say 200 whatever the version states are.
    server = ServeProcess("--model_name=tiny", f"--model_base_path={converted['base'] / 'tiny'}")
    try:
        server.wait_listening()
        base = f"http://127.0.0.1:{server.rest_port}/v1/models/tiny"
        assert _status(base)[0] == 200
        assert _status(base + "/versions/1/metadata")[0] == 200
        status, body = _status(base + "/versions/2/metadata")
        assert status == 404 and "specific(tiny, 2)" in body["error"].lower()  # TF Serving's words
    finally:
        assert server.stop() == 0, server.log
