"""Prometheus metrics of one app, in a registry of its own (several apps may share a process in
tests; a module-global registry would make their counters collide)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Request latency spans a cached 20 ms prediction up to a fetch that hits its deadline.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STAGES = ("fetch", "decode", "model")


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_requests",
            "HTTP requests answered, by route and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "gateway_request_duration_seconds",
            "Time from request received to response produced, by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "gateway_stage_duration_seconds",
            "Time spent per prediction stage: fetch (URL download), decode (decode + resize + "
            "scale), model (gRPC Predict)",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "gateway_requests_in_flight", "Requests being handled right now", registry=self.registry
        )
        self.fetched_bytes = Counter(
            "gateway_fetched_bytes", "Bytes of images downloaded from URLs", registry=self.registry
        )
        self.errors = Counter(
            "gateway_errors",
            "Error answers by error code (see the README's error table)",
            ["code"],
            registry=self.registry,
        )
        self._active = 0
        self._active_lock = threading.Lock()
        # Touch every stage so the series exist (value 0) before the first request.
        for stage in STAGES:
            self.stage_seconds.labels(stage)

    def request_started(self) -> None:
        with self._active_lock:
            self._active += 1
        self.in_flight.inc()

    def request_finished(self) -> None:
        with self._active_lock:
            self._active -= 1
        self.in_flight.dec()

    def active(self) -> int:
        """Requests in flight (what a draining shutdown waits for)."""
        return self._active

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds.labels(name).observe(time.perf_counter() - start)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
