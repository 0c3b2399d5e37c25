"""`python -m bench.call_floor TARGET URL N`: the CPU that the two calls a URL prediction must
make cost in the libraries the gateway makes them with, with nothing of the gateway around them.

- fetch: one aiohttp `ClientSession` (kept-alive connection) GETs URL and reads the body;
- gRPC: one grpc.aio channel sends TARGET the PredictRequest that the gateway sends for the same
  image (uint8 signature, serialized once beforehand) and parses the answer.

Each runs N times back to back on one event loop, in a process of its own; process CPU time
(every thread: gRPC's event-engine threads too) per call is printed as JSON, in ms.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp
import grpc
from tensorflow_serving.apis import predict_pb2

from bench.preprocessing import ours_request
from gateway.model_client import PREDICT_METHOD

WARMUP = 20


async def _fetch_ms(url: str, n: int) -> tuple[float, bytes]:
    async with aiohttp.ClientSession() as session:

        async def get() -> bytes:
            async with session.get(url) as response:
                response.raise_for_status()
                return await response.read()

        for _ in range(WARMUP):
            body = await get()
        started = time.process_time()
        for _ in range(n):
            await get()
        return (time.process_time() - started) * 1000 / n, body


async def _grpc_ms(target: str, request: bytes, n: int) -> float:
    async with grpc.aio.insecure_channel(target) as channel:
        predict = channel.unary_unary(
            PREDICT_METHOD,
            request_serializer=None,
            response_deserializer=predict_pb2.PredictResponse.FromString,
        )
        for _ in range(WARMUP):
            await predict(request, timeout=10)
        started = time.process_time()
        for _ in range(n):
            await predict(request, timeout=10)
        return (time.process_time() - started) * 1000 / n


async def measure(target: str, url: str, n: int) -> dict:
    fetch_ms, image = await _fetch_ms(url, n)
    grpc_ms = await _grpc_ms(target, ours_request(image), n)
    return {"fetch_ms": fetch_ms, "grpc_ms": grpc_ms}


if __name__ == "__main__":
    target, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(asyncio.run(measure(target, url, n))))
