"""`python -m bench.pipeline_floor`: the gateway's request path in its libraries alone.

Answers the benchmark's `POST /predict {"url": ...}` the way the gateway does, with the same
libraries and calls: aiohttp's server reads the JSON body, one kept-alive aiohttp `ClientSession`
GETs the image, the gateway's own `decode_resized` and `encode_predict_request` turn it into the
uint8 PredictRequest (`bench.preprocessing.ours_request`, the calls figure 1 times), grpc.aio
sends it to TF_SERVING_HOST and the scores go back as JSON. And nothing else: no input
validation, SSRF checks, deadlines, size or memory limits, request ids, access log or metrics.
Measured beside ours under the same load, ours ÷ this is what the gateway's own code costs, and
this ÷ the lesson's gateway is the best any gateway built on these libraries could do on the rig.

Environment: TF_SERVING_HOST (host:port of the instant model server, uint8 signature) and PORT.
"""

from __future__ import annotations

import asyncio
import os

import aiohttp
import grpc
from aiohttp import web
from tensorflow_serving.apis import predict_pb2

from bench.backend import NUM_CLASSES, OUTPUT_NAME
from bench.preprocessing import ours_request
from gateway.model_client import PREDICT_METHOD
from gateway.tensors import from_tensor_proto

LABELS = [f"class_{i}" for i in range(NUM_CLASSES)]


async def serve(target: str, port: int) -> None:
    session = aiohttp.ClientSession()
    channel = grpc.aio.insecure_channel(target)
    call = channel.unary_unary(
        PREDICT_METHOD, request_serializer=None, response_deserializer=predict_pb2.PredictResponse.FromString
    )

    async def predict(request: web.Request) -> web.Response:
        body = await request.json()
        async with session.get(body["url"]) as response:
            image = await response.read()
        answer = await call(ours_request(image), timeout=10)
        scores = from_tensor_proto(answer.outputs[OUTPUT_NAME])[0]
        return web.json_response(dict(zip(LABELS, map(float, scores))))

    app = web.Application()
    app.router.add_post("/predict", predict)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(os.environ["TF_SERVING_HOST"], int(os.environ["PORT"])))
