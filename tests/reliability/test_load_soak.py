"""Load soak: 10,000 predictions at concurrency 32 through the gateway to `model serve`."""

from __future__ import annotations

import time

import requests
from reliability_images import small_jpeg
from reliability_load import request_mix, run_load
from reliability_processes import LABELS, gateway_env

from gateway.fetch import POOL_TOTAL

TOTAL = 10_000
CONCURRENCY = 32
WARM_UP = 400


def _settle(gateway) -> dict[str, int]:
    """Figures once the client connections are closed and the gateway has noticed (aiohttp
    closes a connection when it reads EOF), so open keep-alive sockets do not count as leaks."""
    deadline = time.monotonic() + 10
    figures = gateway.figures()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = gateway.figures()
        if again["fds"] == figures["fds"] and again["threads"] == figures["threads"]:
            return again
        figures = again
    return figures


def test_soak_10000_predictions_at_concurrency_32(model_server, image_server, start_gateway, record):
    """10,000 predictions at concurrency 32 (base64, multipart, raw body and URL inputs in turn)
    after a warm-up: zero errors, gateway RSS growth < 10 %, no thread or file-descriptor leak."""
    gateway = start_gateway(gateway_env(model_server.target, image_server.port))
    gateway.wait_ready()
    jpeg = small_jpeg()
    kinds = request_mix(gateway.base, jpeg, image_server.url("/small.jpg"))

    def is_prediction(response: requests.Response):
        body = response.json()
        if list(body) != LABELS or not all(isinstance(v, float) for v in body.values()):
            return f"not a prediction: {response.text[:200]}"
        return None

    warm = run_load(kinds, WARM_UP, CONCURRENCY, is_prediction)
    assert warm.errors == 0, warm.failures
    before = _settle(gateway)
    fetched_before = image_server.hits.get("/small.jpg", 0)

    result = run_load(kinds, TOTAL, CONCURRENCY, is_prediction)
    after = _settle(gateway)
    growth = (after["rss_kib"] - before["rss_kib"]) / before["rss_kib"]
    record(
        requests=result.requests,
        errors=result.errors,
        concurrency=CONCURRENCY,
        seconds=round(result.seconds, 1),
        requests_per_second=round(result.requests / result.seconds, 1),
        p50_ms=round(result.percentile(0.5) * 1000, 1),
        p99_ms=round(result.percentile(0.99) * 1000, 1),
        rss_before_MiB=round(before["rss_kib"] / 1024, 1),
        rss_after_MiB=round(after["rss_kib"] / 1024, 1),
        rss_growth=f"{growth * 100:.1f} %",
        threads_before_after=f"{before['threads']} / {after['threads']}",
        fds_before_after=f"{before['fds']} / {after['fds']}",
    )

    assert result.requests == TOTAL
    assert result.errors == 0, (dict(result.statuses), result.failures)
    # A quarter of the requests were URL inputs: each one really fetched from the image server.
    assert image_server.hits["/small.jpg"] - fetched_before == TOTAL // len(kinds)
    assert growth < 0.10, (before, after)
    assert after["threads"] <= before["threads"], (before, after)
    # The image fetcher keeps idle connections to the image server open for reuse, at most one
    # per fetch that overlapped (CONCURRENCY clients) and at most POOL_TOTAL; how many are open at
    # either moment depends on how many URL fetches last overlapped. A leak would grow with the
    # 10,000 requests, far past that bound.
    assert after["fds"] <= before["fds"] + min(CONCURRENCY, POOL_TOTAL), (before, after)
    assert requests.get(gateway.base + "/readyz", timeout=5).status_code == 200
