"""A steady client load through the Ingress, recording every answer (status, model version).

Bounded: it sends at a fixed rate from a few threads until stopped or until its request cap,
only to the cluster's Ingress address on this machine."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

import requests


@dataclass
class Answer:
    at: float
    status: int  # 0: no HTTP answer (connection error, timeout)
    version: str
    error: str = ""


@dataclass
class LoadLoop:
    url: str
    host: str
    image: bytes
    rate: float = 12.0  # requests per second (the issue asks for at least 10)
    threads: int = 4
    max_requests: int = 20_000
    timeout: float = 20.0
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self._workers: list[threading.Thread] = []
        self.started_at = 0.0

    def _next_slot(self) -> float | None:
        with self._lock:
            if self._stop.is_set() or self._sent >= self.max_requests:
                return None
            slot = self.started_at + self._sent / self.rate
            self._sent += 1
            return slot

    def _work(self):
        session = requests.Session()
        files = {"image": ("sample.jpg", self.image, "image/jpeg")}
        while (slot := self._next_slot()) is not None:
            delay = slot - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            at = time.monotonic()
            try:
                r = session.post(self.url, files=files, headers={"Host": self.host}, timeout=self.timeout)
                answer = Answer(
                    at,
                    r.status_code,
                    r.headers.get("X-Model-Version", ""),
                    "" if r.status_code == 200 else r.text[:300],
                )
            except requests.RequestException as error:
                answer = Answer(at, 0, "", repr(error)[:300])
            with self._lock:
                self.answers.append(answer)

    def __enter__(self) -> LoadLoop:
        self.started_at = time.monotonic()
        for i in range(self.threads):
            worker = threading.Thread(target=self._work, name=f"load-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout + 5)

    def mark(self) -> float:
        return time.monotonic()

    def since(self, start: float, end: float | None = None) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.at >= start and (end is None or a.at < end)]

    @staticmethod
    def summary(answers: list[Answer]) -> dict:
        failed = [a for a in answers if a.status != 200]
        span = (answers[-1].at - answers[0].at) if len(answers) > 1 else 0.0
        return {
            "sent": len(answers),
            "failed": len(failed),
            "rate": round(len(answers) / span, 1) if span else 0.0,
            "versions": dict(collections.Counter(a.version for a in answers if a.status == 200)),
            "errors": [f"{a.status} {a.error}" for a in failed[:5]],
        }
