"""AsyncModelClient (grpc.aio, work in progress toward an event-loop gateway, issue 13) against
the real numpy gRPC PredictionService: discovery, prediction and status mapping answer exactly
as the threaded ModelClient does."""

import asyncio
import socket

import numpy as np
import pytest
from numpy_model_server import FakeModel, NumpyModelServer

from gateway.errors import GatewayError
from gateway.model_client import AsyncModelClient, ModelClient
from gateway.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model_server():
    with NumpyModelServer(FakeModel()) as server:
        yield server


def run(coroutine_function, settings):
    async def main():
        client = AsyncModelClient(settings)
        try:
            return await coroutine_function(client)
        finally:
            await client.close()

    return asyncio.run(main())


def test_discovers_the_same_signature_and_predicts_the_same_scores(model_server):
    settings = Settings(tf_serving_host=model_server.target)
    threaded = ModelClient(settings)
    try:
        signature = threaded.refresh_signature()
        batch = np.random.default_rng(7).uniform(-1, 1, (1, signature.height, signature.width, 3))
        batch = batch.astype(np.float32)
        expected = threaded.predict(signature, batch)
    finally:
        threaded.close()

    async def discover_and_predict(client):
        found = await client.signature()
        return found, await client.predict(found, batch)

    found, (scores, labels, version) = run(discover_and_predict, settings)
    assert found == signature
    np.testing.assert_array_equal(scores, expected[0])
    assert (labels, version) == (expected[1], expected[2])
    np.testing.assert_allclose(scores, model_server.model.scores(batch)[0], rtol=1e-5)


def test_an_unreachable_server_is_503_model_unavailable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(tf_serving_host=f"127.0.0.1:{port}", grpc_timeout_seconds=2.0)
    with pytest.raises(GatewayError) as caught:
        run(lambda client: client.refresh_signature(), settings)
    assert (caught.value.status, caught.value.code) == (503, "model_unavailable")


def test_a_wrong_model_name_is_503_model_not_found(model_server):
    settings = Settings(tf_serving_host=model_server.target, model_name="no-such-model")
    with pytest.raises(GatewayError) as caught:
        run(lambda client: client.refresh_signature(), settings)
    assert (caught.value.status, caught.value.code) == (503, "model_not_found")
    assert "no-such-model" in caught.value.message
