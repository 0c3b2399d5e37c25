"""A bounded closed-loop load generator: `concurrency` client threads, each with its own
keep-alive session, share a fixed number of requests. Used by the soak test and bench/soak.py."""

from __future__ import annotations

import base64
import collections
import threading
import time
from dataclasses import dataclass, field

import requests


@dataclass
class LoadResult:
    requests: int = 0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)  # first few non-200 answers / exceptions
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        return self.requests - self.statuses[200]

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def request_mix(gateway: str, jpeg: bytes, image_url: str | None):
    """The inputs the soak rotates through: base64 JSON, a multipart upload, a raw body and (when
    an image URL is given) a URL fetch, so every input path is exercised for leaks."""
    encoded = base64.b64encode(jpeg).decode()
    kinds = [
        lambda s: s.post(gateway + "/predict", json={"image": encoded}, timeout=30),
        lambda s: s.post(gateway + "/predict", files={"file": ("x.jpg", jpeg, "image/jpeg")}, timeout=30),
        lambda s: s.post(gateway + "/predict", data=jpeg, headers={"Content-Type": "image/jpeg"}, timeout=30),
    ]
    if image_url:
        kinds.append(lambda s: s.post(gateway + "/predict", json={"url": image_url}, timeout=30))
    return kinds


def run_load(kinds, total: int, concurrency: int, check=None) -> LoadResult:
    """Send `total` requests from `concurrency` threads; `check(response)` may flag a 200 as bad."""
    result = LoadResult()
    lock = threading.Lock()
    counter = iter(range(total))

    def worker():
        with requests.Session() as session:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                started = time.perf_counter()
                try:
                    response = kinds[index % len(kinds)](session)
                    status = response.status_code
                    problem = None if status == 200 else f"{status}: {response.text[:200]}"
                    if problem is None and check is not None:
                        problem = check(response)
                        status = status if problem is None else "bad-200"
                except requests.RequestException as error:
                    status, problem = type(error).__name__, repr(error)[:200]
                elapsed = time.perf_counter() - started
                with lock:
                    result.requests += 1
                    result.statuses[status] += 1
                    result.latencies.append(elapsed)
                    if problem and len(result.failures) < 10:
                        result.failures.append(problem)

    threads = [threading.Thread(target=worker, name=f"load-{i}") for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result
