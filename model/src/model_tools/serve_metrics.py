"""Prometheus text for `model serve`'s monitoring endpoint, with TF Serving's metric names
(``:tensorflow:serving:request_count``, ``...:request_latency``) so dashboards carry over."""

from __future__ import annotations

import bisect
import collections
import threading

# microseconds, the unit of TF Serving's request_latency histogram
_BUCKETS_US = (1e3, 2.5e3, 5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7)


class ServeMetrics:
    def __init__(self):
        self._lock = threading.Lock()
        self._requests = collections.Counter()  # (model, status) -> count
        self._latency = {}  # (model, api) -> [bucket counts..., sum, count]

    def record(self, model: str, api: str, status: str, seconds: float, entrypoint: str = "GRPC") -> None:
        micros = seconds * 1e6
        with self._lock:
            self._requests[(model, status)] += 1
            if status == "OK":
                row = self._latency.setdefault((model, api, entrypoint), [0] * len(_BUCKETS_US) + [0.0, 0])
                bucket = bisect.bisect_left(_BUCKETS_US, micros)
                if bucket < len(_BUCKETS_US):  # beyond the last bound: only +Inf counts it
                    row[bucket] += 1
                row[-2] += micros
                row[-1] += 1

    def render(self, manager) -> str:
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        with self._lock:
            for (model, status), n in sorted(self._requests.items()):
                lines.append(
                    f':tensorflow:serving:request_count{{model_name="{model}",status="{status}"}} {n}'
                )
            lines.append("# TYPE :tensorflow:serving:request_latency histogram")
            for (model, api, entrypoint), row in sorted(self._latency.items()):
                labels = f'model_name="{model}",API="{api}",entrypoint="{entrypoint}"'
                cumulative = 0
                for bound, n in zip(_BUCKETS_US, row):
                    cumulative += n
                    lines.append(
                        f':tensorflow:serving:request_latency_bucket{{{labels},le="{bound:g}"}} {cumulative}'
                    )
                lines.append(f':tensorflow:serving:request_latency_bucket{{{labels},le="+Inf"}} {row[-1]}')
                lines.append(f":tensorflow:serving:request_latency_sum{{{labels}}} {row[-2]:.0f}")
                lines.append(f":tensorflow:serving:request_latency_count{{{labels}}} {row[-1]}")
        lines.append("# TYPE :tensorflow:serving:model_version_available gauge")
        for name, model in sorted(manager.models.items()):
            try:
                rows = model.status()
            except Exception:  # no version yet: nothing to report
                rows = []
            for version, state, _, _ in rows:
                lines.append(
                    f':tensorflow:serving:model_version_available{{model_name="{name}",'
                    f'version="{version}"}} {1 if state == "AVAILABLE" else 0}'
                )
        return "\n".join(lines) + "\n"
