"""Prometheus metrics of one app, in a registry of its own (several apps may share a process in
tests; a module-global registry would make their counters collide)."""

from __future__ import annotations

import threading

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
# Any token is a valid HTTP method: others are counted as "other", so a client cannot grow the
# label set (and the cache of series below) without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


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
        # Every stage's series exists (value 0) before the first request, and is looked up once:
        # labels() hashes and locks on each call, several times per request otherwise.
        self._stages = {stage: self.stage_seconds.labels(stage) for stage in STAGES}
        self._answered: dict[tuple[str, str, str], tuple] = {}

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP answer and its duration (children cached per route/method/status)."""
        key = (route, method if method in _METHODS else "other", str(status))
        children = self._answered.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.request_seconds.labels(route))
            self._answered[key] = children  # a few routes x methods x statuses: bounded
        children[0].inc()
        children[1].observe(seconds)

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

    def stage(self, name: str):
        """`with metrics.stage("fetch"): ...` observes the block's duration."""
        return self._stages[name].time()

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
