"""The figures the targets are judged on, computed once for bench/results.md (report.py) and the
READMEs' summary (summary.py): the issue's goals, peak throughput, CPU per request, the floors."""

from __future__ import annotations

import statistics

from bench.run import BASELINES, OURS

FLOOR = "floor: JPEG decode, DCT-scaled"
CASE_TITLES = {"dataset": "dataset JPEG", "phone": "phone photo"}
# The issue's goals, each written once for the targets table and the READMEs' summary.
GOAL_PHONE_PREP = 1.15  # ours' phone preprocessing ÷ the DCT-scaled decode floor, at most
GOAL_PEAK = {"phone": 3.0, "dataset": 2.0}  # ours' peak req/s ÷ the better baseline's, at least
GOAL_CPU = {"dataset": 0.6, "phone": None}  # ours' CPU per request ÷ the better baseline's, at most
GOAL_WEB_FLOOR = 1.5  # dataset CPU per request ÷ (decode floor + Flask/waitress floor), at most


def peak(throughput: dict, case: str, name: str) -> float:
    return max(v["rps"] for v in throughput[case][name].values())


def cpu_per_request(throughput: dict, case: str, name: str, key: str = "cpu_ms") -> float:
    """Median CPU ms per request over the concurrencies (it barely depends on them): the
    gateway's (`cpu_ms`), or the model server's / nginx's while serving that gateway."""
    return statistics.median(v[key] for v in throughput[case][name].values())


def better_for_cpu(throughput: dict, case: str) -> str:
    """The lesson's setup that costs the least gateway CPU per request on `case`."""
    return min(BASELINES, key=lambda name: cpu_per_request(throughput, case, name))


def better_for_peak(throughput: dict, case: str) -> str:
    """The lesson's setup with the highest peak requests/s on `case`."""
    return max(BASELINES, key=lambda name: peak(throughput, case, name))


def web_stack_floor(result: dict) -> dict:
    """What a dataset-JPEG request cannot cost less than in this stack: decoding the JPEG
    (in-process, figure 1) plus Flask on waitress parsing the request (measured beside ours)."""
    decode = result["preprocessing"]["dataset"][FLOOR]["median_ms"]
    web = statistics.median(v["cpu_ms"] for v in result["web_floor"].values())
    return {
        "decode_ms": decode,
        "web_ms": web,
        "ratio": cpu_per_request(result["throughput"], "dataset", OURS) / (decode + web),
    }


def call_floor(result: dict) -> dict:
    """web_stack_floor plus the two calls a URL prediction cannot skip, each in the library the
    gateway makes it with and nothing else (bench/call_floor.py): fetching the image (aiohttp)
    and the Predict call (grpc.aio). Ours over their sum is what the gateway's own code costs."""
    floor = web_stack_floor(result)
    calls = result["call_floor"]
    total = floor["decode_ms"] + floor["web_ms"] + calls["fetch_ms"] + calls["grpc_ms"]
    return {
        **floor,
        "fetch_ms": calls["fetch_ms"],
        "grpc_ms": calls["grpc_ms"],
        "ratio": cpu_per_request(result["throughput"], "dataset", OURS) / total,
    }


def pipeline_floor(result: dict) -> dict:
    """Ours against the same request path in its libraries alone (bench/pipeline_floor.py),
    measured beside it under the same load: ours ÷ that is what the gateway's own code costs
    (validation, SSRF checks, deadlines, limits, request ids, logs, metrics); that ÷ the better
    baseline is the best CPU ratio a gateway on these libraries could reach on this rig, that ÷
    (decode floor + Flask/waitress floor) the best web-floor ratio, and its peak ÷ the better
    baseline's peak the best throughput ratio."""
    tp = result["throughput"]
    floor = statistics.median(v["cpu_ms"] for v in result["pipeline_floor"].values())
    best = cpu_per_request(tp, "dataset", better_for_cpu(tp, "dataset"))
    ours = cpu_per_request(tp, "dataset", OURS)
    web = web_stack_floor(result)
    floor_peak = max(v["rps"] for v in result["pipeline_floor"].values())
    return {
        "floor_ms": floor,
        "ours_ms": ours,
        "ours_ratio": ours / floor,
        "baseline_ratio": floor / best,
        "web_floor_ratio": floor / (web["decode_ms"] + web["web_ms"]),
        "peak_ratio": floor_peak / peak(tp, "dataset", better_for_peak(tp, "dataset")),
    }
