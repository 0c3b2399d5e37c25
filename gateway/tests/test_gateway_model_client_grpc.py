"""ModelClient (grpc.aio) against a real gRPC PredictionService (the numpy one): discovery,
prediction, the refresh task and status mapping."""

import asyncio
import socket

import numpy as np
import pytest
from numpy_model_server import FakeModel, NumpyModelServer

from gateway.errors import GatewayError
from gateway.model_client import ModelClient, ModelSignature
from gateway.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model_server():
    with NumpyModelServer(FakeModel()) as server:
        yield server


def run(coroutine_function, settings):
    async def main():
        client = ModelClient(settings)
        try:
            return await coroutine_function(client)
        finally:
            await client.close()

    return asyncio.run(main())


def test_discovers_the_signature_and_predicts_the_served_scores(model_server):
    settings = Settings(tf_serving_host=model_server.target)
    model = model_server.model
    batch = np.random.default_rng(7).uniform(-1, 1, (1, model.size, model.size, 3)).astype(np.float32)

    async def discover_and_predict(client):
        found = await client.signature()
        return found, await client.predict(found, batch)

    found, (scores, labels, version) = run(discover_and_predict, settings)
    assert found == ModelSignature(
        version=model.version,
        input_name=model.input_name,
        input_dtype="float32",
        width=model.size,
        height=model.size,
        scores_output=model.scores_output,
        labels_output=None,
    )
    np.testing.assert_allclose(scores, model.scores(batch)[0], rtol=1e-5)
    assert (labels, version) == (None, model.version)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_unavailable_is_retried_for_a_full_size_image(dtype):
    """The retry policy covers real requests: a 299x299 image is 268 KB as uint8 and 1 MB as
    float32, both past gRPC's default 256 KiB per-call retry buffer, beyond which it gave up
    after the first UNAVAILABLE."""
    model = FakeModel(input_dtype=dtype, unavailable_calls=1)
    batch = np.full((1, model.size, model.size, 3), 100, dtype=dtype)
    with NumpyModelServer(model) as server:
        settings = Settings(tf_serving_host=server.target)

        async def predict(client):
            return await client.predict(await client.signature(), batch)

        scores, _, _ = run(predict, settings)
        assert server.service.predict_calls == 2, server.service.predict_calls
        assert model.unavailable_calls == 0
        np.testing.assert_allclose(scores, model.scores(batch)[0], rtol=1e-5)
        model.unavailable_calls = 3  # the policy's 3 attempts: the third failure is the answer
        with pytest.raises(GatewayError) as caught:
            run(predict, settings)
        assert (caught.value.status, caught.value.code) == (503, "model_unavailable")
        assert server.service.predict_calls == 5


def test_the_refresh_task_asks_for_metadata_on_its_interval_until_closed(model_server):
    settings = Settings(tf_serving_host=model_server.target, metadata_refresh_seconds=0.1)
    service = model_server.service

    async def refresh_for_a_while(client):
        before = service.metadata_calls
        client.start_refresh()
        await asyncio.sleep(0.55)
        during = service.metadata_calls - before
        await client.close()
        after_close = service.metadata_calls
        await asyncio.sleep(0.3)
        return during, service.metadata_calls - after_close

    during, after = run(refresh_for_a_while, settings)
    assert 3 <= during <= 7, during
    assert after == 0


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
