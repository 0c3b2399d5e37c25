"""One benchmark run: start every server, measure all four figures alternating baseline/ours,
stop everything. Returns a plain dict that bench/report.py turns into results.md and the chart."""

from __future__ import annotations

import contextlib
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

from bench import images, load, machine, preprocessing, servers
from bench.backend import NUM_CLASSES, Backend
from bench.baseline.gateway import classes as LESSON_CLASSES

BASELINE_GUNICORN = "baseline (gunicorn)"
BASELINE_WAITRESS = "baseline (waitress)"
# Ours in front of the model `make demo` and releases serve by default (`model convert --uint8`:
# raw pixels in, scaling in the graph, 4x fewer tensor bytes for the gateway to send and the
# server to read), and in front of a float32 model like the lesson's, tensor for tensor.
OURS = "ours"
OURS_FLOAT32 = "ours (float32 model)"
GATEWAYS = (BASELINE_GUNICORN, BASELINE_WAITRESS, OURS, OURS_FLOAT32)
BASELINES = (BASELINE_GUNICORN, BASELINE_WAITRESS)
# Flask on waitress doing nothing but parse the JSON body: measured beside the dataset JPEG runs.
WEB_FLOOR = "floor: Flask on waitress"
# The same request path as ours in its libraries alone (bench/pipeline_floor.py), beside it too.
PIPELINE_FLOOR = "floor: the request path in its libraries alone"


@dataclass
class Config:
    reps: int = 3
    seconds: int = 4  # per wrk run (wrk takes whole seconds)
    concurrencies: tuple[int, ...] = (1, 4, 16)
    threads: int = 8  # the gateway's default THREADS; the baseline's waitress gets the same
    prep_reps: int = 7
    prep_iterations: dict[str, int] = field(default_factory=lambda: {"dataset": 40, "phone": 5})
    bytes_requests: int = 10
    call_floor_calls: int = 500  # fetches and gRPC calls per repetition (bench/call_floor.py)
    spread_connections: int = 8


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _rotated(items, rep: int) -> list:
    items = list(items)
    k = rep % len(items)
    return items[k:] + items[:k]


def run(config: Config) -> dict:
    started = time.time()
    result = {"config": asdict(config), "machine": machine.describe(), "load_before": machine.load_average()}
    with tempfile.TemporaryDirectory(prefix="keras-serving-bench-") as tmp, contextlib.ExitStack() as stack:
        work = pathlib.Path(tmp)
        log(f"work directory {work}; generating the phone photo")
        cases = images.write_cases(work / "images")
        result["images"] = {case: _image_facts(path) for case, path in cases.items()}

        log("preprocessing + serialization, in-process (figure 1)")
        result["preprocessing"] = preprocessing.measure(
            {case: path.read_bytes() for case, path in cases.items()},
            config.prep_reps,
            config.prep_iterations,
        )

        log("starting nginx, instant model servers and gateways")
        nginx = servers.nginx(work / "images", work)
        backend, backend_uint8, *replicas = backends = [
            Backend("float32"),
            Backend("uint8"),
            Backend("float32"),
            Backend("float32"),
        ]
        for model_server in backends:
            stack.callback(model_server.stop)
            model_server.launch()
        for model_server in backends:
            model_server.wait_ready()
        # One target naming both replicas, for both gateways: ours balances over it
        # (round_robin); the lesson's channel keeps gRPC's default (pick_first) -> see results.md.
        replicas_target = "ipv4:" + ",".join(r.address for r in replicas)
        extra = {
            "FETCH_ALLOWED_PORTS": str(nginx.port),
            "LISTEN_HOST": "127.0.0.1",
            "LABELS": ",".join(LESSON_CLASSES),
        }
        gateways = {
            BASELINE_GUNICORN: servers.baseline_gunicorn(backend.address, work),
            BASELINE_WAITRESS: servers.baseline_waitress(backend.address, config.threads, work),
            OURS: servers.ours(backend_uint8.address, config.threads, work, extra=extra),
            OURS_FLOAT32: servers.ours(backend.address, config.threads, work, "ours-float32", extra),
        }
        model_server_of = {name: backend_uint8 if name == OURS else backend for name in GATEWAYS}
        # Result key -> (label, server) of the floors measured beside the dataset-JPEG runs.
        floors = {
            "web_floor": (WEB_FLOOR, servers.web_floor(config.threads, work)),
            "pipeline_floor": (PIPELINE_FLOOR, servers.pipeline_floor(backend_uint8.address, work)),
        }
        spread_gateways = {
            BASELINE_WAITRESS: servers.baseline_waitress(
                replicas_target, config.threads, work, "baseline-waitress-replicas"
            ),
            OURS: servers.ours(replicas_target, config.threads, work, "ours-replicas", extra),
        }
        floor_servers = [server for _, server in floors.values()]
        everything = [nginx, *floor_servers, *gateways.values(), *spread_gateways.values()]
        for server in everything:
            stack.callback(server.stop)
            server.start()
        for server in everything:
            server.wait_listening()

        urls = {case: f"{nginx.url}/{path.name}" for case, path in cases.items()}
        scripts = {case: load.write_script(url, work / f"{case}.lua") for case, url in urls.items()}
        for server in [floors["pipeline_floor"][1], *gateways.values(), *spread_gateways.values()]:
            for url in urls.values():
                servers.check_prediction(server, url, NUM_CLASSES)

        log("tensor bytes per request (figure 3)")
        result["tensor_bytes"] = _tensor_bytes(
            [
                ("baseline (float32)", gateways[BASELINE_WAITRESS], backend),
                ("ours (float32)", gateways[OURS_FLOAT32], backend),
                ("ours (uint8)", gateways[OURS], backend_uint8),
            ],
            urls["dataset"],
            config.bytes_requests,
        )

        log("warming up the gateways")
        for case in cases:
            for name in GATEWAYS:
                load.run_wrk(gateways[name].url, scripts[case], 4, 2)
        for server in floor_servers:
            load.run_wrk(server.url, scripts["dataset"], 4, 2)

        runs = {case: {name: {c: [] for c in config.concurrencies} for name in GATEWAYS} for case in cases}
        floor_runs = {key: {c: [] for c in config.concurrencies} for key in floors}
        call_floors = []
        spread_counts = {name: [0, 0] for name in spread_gateways}
        for rep in range(config.reps):
            call_floors.append(_call_floor(backend_uint8.address, urls["dataset"], config.call_floor_calls))
            for case in cases:
                for c in config.concurrencies:
                    if case == "dataset":
                        for key, (label, server) in floors.items():
                            floor_runs[key][c].append(
                                _floor_run(label, server, scripts[case], c, config.seconds)
                            )
                    for name in _rotated(GATEWAYS, rep):
                        model_server = model_server_of[name]
                        before = (
                            gateways[name].cpu_seconds(),
                            model_server.cpu_seconds(),
                            nginx.cpu_seconds(),
                        )
                        measured = load.run_wrk(gateways[name].url, scripts[case], c, config.seconds)
                        after = (
                            gateways[name].cpu_seconds(),
                            model_server.cpu_seconds(),
                            nginx.cpu_seconds(),
                        )
                        per_request = [
                            (a - b) * 1000 / max(measured["requests"], 1) for a, b in zip(after, before)
                        ]
                        measured["cpu_ms"], measured["model_cpu_ms"], measured["nginx_cpu_ms"] = per_request
                        runs[case][name][c].append(measured)
                        log(
                            f"rep {rep + 1}/{config.reps} {case} c={c} {name}: "
                            f"{measured['rps']:.1f} req/s p50 {measured['p50_ms']:.0f} ms "
                            f"p99 {measured['p99_ms']:.0f} ms CPU {measured['cpu_ms']:.1f} ms/req "
                            f"errors {measured['errors']}"
                        )
            for name in _rotated(spread_gateways, rep):
                for replica in replicas:
                    replica.reset()
                load.run_wrk(
                    spread_gateways[name].url, scripts["dataset"], config.spread_connections, config.seconds
                )
                for i, replica in enumerate(replicas):
                    spread_counts[name][i] += replica.counts()["predicts"]
                log(f"rep {rep + 1}/{config.reps} spread {name}: {spread_counts[name]}")
        result["throughput"] = _summarize_throughput(runs)
        for key, floor_by_c in floor_runs.items():
            result[key] = {
                str(c): {
                    figure: statistics.median(r[figure] for r in measured) for figure in ("rps", "cpu_ms")
                }
                for c, measured in floor_by_c.items()
            }
        result["call_floor"] = {
            key: statistics.median(m[key] for m in call_floors) for key in ("fetch_ms", "grpc_ms")
        }
        result["spread"] = {
            name: {"counts": counts, "ratio": (max(counts) / min(counts)) if min(counts) else None}
            for name, counts in spread_counts.items()
        }
        result["load_after"] = machine.load_average()
    result["duration_s"] = time.time() - started
    result["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return result


def _floor_run(
    label: str, server: servers.Server, script: pathlib.Path, connections: int, seconds: int
) -> dict:
    before = server.cpu_seconds()
    measured = load.run_wrk(server.url, script, connections, seconds)
    if measured["errors"]:
        raise RuntimeError(f"{label} answered {measured['errors']} errors")
    measured["cpu_ms"] = (server.cpu_seconds() - before) * 1000 / max(measured["requests"], 1)
    log(f"{label} c={connections}: {measured['rps']:.1f} req/s CPU {measured['cpu_ms']:.2f} ms/req")
    return measured


def _call_floor(target: str, url: str, calls: int) -> dict:
    """CPU ms of one image fetch and one gRPC Predict in the gateway's libraries alone."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.call_floor", target, url, str(calls)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    measured = json.loads(out.strip().splitlines()[-1])
    log(
        f"call floor: image fetch {measured['fetch_ms']:.3f} ms, gRPC Predict {measured['grpc_ms']:.3f} ms CPU"
    )
    return measured


def _image_facts(path: pathlib.Path) -> dict:
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    return {"file": path.name, "width": width, "height": height, "bytes": path.stat().st_size}


def _tensor_bytes(subjects, url: str, n: int) -> dict:
    measured = {}
    for label, gateway, backend in subjects:
        backend.reset()
        for _ in range(n):
            servers.check_prediction(gateway, url, NUM_CLASSES)
        counts = backend.counts()
        if counts["predicts"] != n:
            raise RuntimeError(f"{label}: {n} predictions sent, the model server saw {counts['predicts']}")
        measured[label] = {key: counts[key] // n for key in ("payload_bytes", "input_bytes", "request_bytes")}
    return measured


def _summarize_throughput(runs: dict) -> dict:
    summary = {}
    for case, by_gateway in runs.items():
        summary[case] = {}
        for name, by_c in by_gateway.items():
            summary[case][name] = {
                str(c): {
                    "rps": statistics.median(r["rps"] for r in measured),
                    "p50_ms": statistics.median(r["p50_ms"] for r in measured),
                    "p99_ms": statistics.median(r["p99_ms"] for r in measured),
                    "cpu_ms": statistics.median(r["cpu_ms"] for r in measured),
                    "model_cpu_ms": statistics.median(r["model_cpu_ms"] for r in measured),
                    "nginx_cpu_ms": statistics.median(r["nginx_cpu_ms"] for r in measured),
                    "errors": sum(r["errors"] for r in measured),
                    "rps_runs": [r["rps"] for r in measured],
                }
                for c, measured in by_c.items()
            }
    return summary
