"""`python -m bench.profile`: where a gateway's time goes under load, sampled with py-spy.

Starts nginx, one instant model server and the chosen gateway exactly as `python -m bench` does,
drives it with wrk, records it with `py-spy record --format raw` and prints the functions with
the largest share of samples (own time and cumulative), counted over request-handling stacks only.
With `--per-thread` it samples nothing: it reads each gateway thread's CPU time, context switches
and page faults from /proc before and after the load and prints them per request.

    python -m bench.profile --gateway ours --case dataset --connections 1
    python -m bench.profile --gateway ours --case dataset --connections 4 --per-thread
    python -m bench.profile --gateway pipeline-floor --case dataset --connections 4 --per-thread

`pipeline-floor` is ours' request path in its libraries alone (bench/pipeline_floor.py): the same
report for it shows what ours adds.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import subprocess
import sys
import tempfile

from bench import images, load, servers
from bench.backend import NUM_CLASSES, Backend
from bench.baseline.gateway import classes as LESSON_CLASSES

PY_SPY = pathlib.Path(sys.executable).parent / "py-spy"


def start_gateway(name: str, target: str, threads: int, work: pathlib.Path, nginx_port: int):
    if name == "ours":
        extra = {
            "FETCH_ALLOWED_PORTS": str(nginx_port),
            "LISTEN_HOST": "127.0.0.1",
            "LABELS": ",".join(LESSON_CLASSES),
        }
        return servers.ours(target, threads, work, extra=extra)
    if name == "pipeline-floor":  # ours' calls in their libraries alone, to compare ours with
        return servers.pipeline_floor(target, work)
    if name == "baseline-waitress":
        return servers.baseline_waitress(target, threads, work)
    return servers.baseline_gunicorn(target, work)


def summarize(raw: pathlib.Path, keep: str, top: int) -> str:
    own, cumulative, total = collections.Counter(), collections.Counter(), 0
    # py-spy writes frame names as it finds them: a module docstring read as a name can put
    # newlines and bytes that are not UTF-8 into the file. Such pieces are not samples.
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        if keep not in stack:
            continue  # idle server threads, the metadata refresher...
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            cumulative[frame] += int(count)
    if not total:
        return "no request-handling samples"
    lines = [f"{total} samples in request handling", "", "own time:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "cumulative (frames below the WSGI server):"]
    skip = ("threading.py", "waitress/", "flask/app.py", "gunicorn/", "werkzeug/")
    interesting = [(f, n) for f, n in cumulative.most_common() if not any(s in f for s in skip)]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in interesting[:top]]
    return "\n".join(lines)


def group_counters(group: int) -> dict[tuple[int, int], servers.ThreadCounters]:
    """Every thread of every process in a server's process group, by (pid, tid)."""
    return {
        (process, tid): counters
        for process in servers.group_pids(group)
        for tid, counters in servers.thread_counters(process).items()
    }


def per_thread_report(
    before: dict[tuple[int, int], servers.ThreadCounters],
    after: dict[tuple[int, int], servers.ThreadCounters],
    requests: int,
) -> str:
    """Per thread and in total, per request: CPU ms, voluntary and involuntary context switches,
    minor page faults. Threads started during the load count from zero; idle ones are left out."""
    rows, totals = [], [0.0, 0, 0, 0]
    for key, end in sorted(after.items()):
        start = before.get(key) or servers.ThreadCounters(end.name, 0.0, 0, 0, 0)
        cost = [
            end.cpu_seconds - start.cpu_seconds,
            end.voluntary_switches - start.voluntary_switches,
            end.involuntary_switches - start.involuntary_switches,
            end.minor_faults - start.minor_faults,
        ]
        totals = [t + c for t, c in zip(totals, cost)]
        if any(cost):
            process, tid = key
            label = f"{end.name} {'main' if tid == process else tid} (pid {process})"
            rows.append((label, *cost))
    lines = [
        f"{'thread':40s} {'CPU ms':>8s} {'vol. cs':>8s} {'invol. cs':>9s} {'faults':>7s}   (per request)"
    ]
    for label, cpu, voluntary, involuntary, faults in sorted(rows, key=lambda row: -row[1]) + [
        ("total", *totals)
    ]:
        lines.append(
            f"{label:40s} {cpu * 1000 / requests:8.3f} {voluntary / requests:8.2f} "
            f"{involuntary / requests:9.2f} {faults / requests:7.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--gateway",
        choices=("ours", "pipeline-floor", "baseline-waitress", "baseline-gunicorn"),
        default="ours",
    )
    parser.add_argument("--case", choices=images.CASES, default="dataset")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--dtype",
        choices=("uint8", "float32"),
        help="the model's input (default: uint8 for ours and the pipeline floor, float32 for the lesson's gateway)",
    )
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="count every sampled stack (the WSGI server's I/O thread, gRPC, the reaper), not only request handling",
    )
    parser.add_argument(
        "--gil", action="store_true", help="sample only the thread holding the GIL (what limits one process)"
    )
    parser.add_argument(
        "--native",
        action="store_true",
        help="C frames too (libjpeg, gRPC core, syscalls); py-spy must stop the process for each "
        "sample, so throughput drops",
    )
    parser.add_argument(
        "--per-thread",
        action="store_true",
        help="no sampling: CPU, context switches and page faults of each gateway thread per request",
    )
    args = parser.parse_args()
    lessons = args.gateway.startswith("baseline")  # the lesson's gateway: float32, its own endpoint
    with (
        tempfile.TemporaryDirectory(prefix="keras-serving-profile-") as tmp,
        Backend(args.dtype or ("float32" if lessons else "uint8")) as backend,
    ):
        work = pathlib.Path(tmp)
        cases = images.write_cases(work / "images")
        nginx = servers.nginx(work / "images", work).start()
        gateway = start_gateway(args.gateway, backend.address, args.threads, work, nginx.port)
        gateway.start()
        try:
            nginx.wait_listening()
            gateway.wait_listening()
            url = f"{nginx.url}/{cases[args.case].name}"
            servers.check_prediction(gateway, url, NUM_CLASSES)
            script = load.write_script(url, work / "load.lua")
            # Warm up on both images, as in `python -m bench` (big images change how the
            # allocator serves the 1 MB tensors afterwards: fewer page faults).
            for case, path in cases.items():
                warm = load.write_script(f"{nginx.url}/{path.name}", work / f"warm-{case}.lua")
                load.run_wrk(gateway.url, warm, args.connections, 2)
            if args.per_thread:
                before = group_counters(gateway.process.pid)
                measured = load.run_wrk(gateway.url, script, args.connections, args.seconds)
                after = group_counters(gateway.process.pid)
                requests = max(1, measured["requests"])
                print(
                    f"{args.gateway}, {args.case}, c={args.connections}: {measured['rps']:.1f} req/s, "
                    f"p50 {measured['p50_ms']:.1f} ms, p99 {measured['p99_ms']:.1f} ms, {requests} requests\n"
                )
                print(per_thread_report(before, after, requests))
                return
            raw = work / "py-spy.txt"
            spy = subprocess.Popen(
                [
                    str(PY_SPY),
                    "record",
                    "--pid",
                    str(gateway.process.pid),
                    "--subprocesses",
                    "--format",
                    "raw",
                    "--rate",
                    "250",
                    *(["--gil"] if args.gil else []),
                    *(["--native"] if args.native else ["--nonblocking"]),
                    "--duration",
                    str(args.seconds),
                    "-o",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            measured = load.run_wrk(gateway.url, script, args.connections, args.seconds)
            _, err = spy.communicate(timeout=args.seconds + 60)
            if spy.returncode != 0:
                raise SystemExit(f"py-spy failed (needs ptrace permission): {err.strip()}")
            print(
                f"{args.gateway}, {args.case}, c={args.connections}: {measured['rps']:.1f} req/s, "
                f"p50 {measured['p50_ms']:.1f} ms, p99 {measured['p99_ms']:.1f} ms "
                f"(slowed by the sampling)\n"
            )
            keep = "" if args.all_threads else "predict_endpoint" if lessons else "predict"
            print(summarize(raw, keep, args.top))
        finally:
            gateway.stop()
            nginx.stop()


if __name__ == "__main__":
    main()
