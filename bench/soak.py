"""`python -m bench.soak`: the long soak behind the bounded one in tests/reliability.

The demo model (model/demo/clothing-model.keras, 128x128, converted with `model convert`) behind
`model serve`, the gateway as `python -m gateway`, and a closed loop of predictions (base64,
multipart, raw body and URL inputs in turn) at a fixed concurrency. Gateway RSS, threads and
open fds are sampled at every tenth of the run, so slow growth shows as a trend rather than one
before/after pair. Writes bench/soak-results.md.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))  # the reliability tier's real helpers
sys.path.insert(0, str(ROOT / "tests"))  # and the test support package they import

from reliability_images import ImageServer, small_jpeg  # noqa: E402
from reliability_load import request_mix, run_load  # noqa: E402
from reliability_processes import GatewayProcess, ModelServerProcess, gateway_env  # noqa: E402

DEMO = ROOT / "model" / "demo"
NAME = "clothing-model"


def convert_demo(out: pathlib.Path) -> pathlib.Path:
    subprocess.run(
        [
            str(pathlib.Path(sys.executable).parent / "model"),
            "convert",
            str(DEMO / "clothing-model.keras"),
            "--out",
            str(out),
            "--name",
            NAME,
            "--labels",
            str(DEMO / "labels.txt"),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out / NAME


def soak(total: int, concurrency: int, warm_up: int, work: pathlib.Path) -> dict:
    samples = []
    with ImageServer("127.0.0.3") as images:
        model = ModelServerProcess(convert_demo(work / "models"), NAME, work).start()
        try:
            with GatewayProcess(gateway_env(model.target, images.port), work) as gateway:
                gateway.wait_ready()
                kinds = request_mix(gateway.base, small_jpeg(96), images.url("/small.jpg"))
                run_load(kinds, warm_up, concurrency)
                samples.append({"after": 0, **gateway.figures()})
                step = max(1, total // 10)
                results = []
                for done in range(step, total + step, step):
                    results.append(run_load(kinds, min(step, total - done + step), concurrency))
                    time.sleep(1)  # closed client sessions: let waitress drop their channels
                    samples.append({"after": min(done, total), **gateway.figures()})
        finally:
            model.stop()
    return {"samples": samples, "results": results, "total": total, "concurrency": concurrency}


def write_markdown(run: dict, path: pathlib.Path) -> None:
    results, samples = run["results"], run["samples"]
    seconds = sum(r.seconds for r in results)
    errors = sum(r.errors for r in results)
    latencies = sorted(x for r in results for x in r.latencies)
    first, last = samples[0], samples[-1]
    lines = [
        "# Gateway soak (bench/soak.py)",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m bench.soak`; "
        f"demo model behind `model serve`, gateway `python -m gateway`, all on loopback.",
        "",
        f"- requests: {sum(r.requests for r in results)} at concurrency {run['concurrency']}, errors: {errors}",
        f"- time: {seconds:.0f} s, {sum(r.requests for r in results) / seconds:.0f} requests/s, "
        f"p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms",
        f"- RSS after warm-up {first['rss_kib'] / 1024:.1f} MiB, at the end {last['rss_kib'] / 1024:.1f} MiB "
        f"({(last['rss_kib'] - first['rss_kib']) / first['rss_kib'] * 100:+.1f} %)",
        "",
        "| after requests | RSS MiB | threads | open fds |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {s['after']} | {s['rss_kib'] / 1024:.1f} | {s['threads']} | {s['fds']} |" for s in samples]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warm-up", type=int, default=1000)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "bench" / "soak-results.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as work:
        run = soak(args.requests, args.concurrency, args.warm_up, pathlib.Path(work))
    write_markdown(run, args.out)
    print(args.out.read_text())
    errors = sum(r.errors for r in run["results"])
    growth = (run["samples"][-1]["rss_kib"] - run["samples"][0]["rss_kib"]) / run["samples"][0]["rss_kib"]
    return 0 if errors == 0 and growth < 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
