"""Load from a separate process: wrk (from apt) POSTing the JSON body of a URL prediction."""

from __future__ import annotations

import json
import pathlib
import subprocess

LUA = """\
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  io.write(string.format(
    'WRK_RESULT {{"requests": %d, "duration_us": %d, "status_errors": %d, "timeouts": %d, '
    .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, '
    .. '"p50_us": %.0f, "p99_us": %.0f, "max_us": %.0f}}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.timeout,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def write_script(image_url: str, path: pathlib.Path) -> pathlib.Path:
    path.write_text(LUA.format(body=json.dumps({"url": image_url})))
    return path


def run_wrk(url: str, script: pathlib.Path, connections: int, seconds: int) -> dict:
    """One wrk run; returns ok requests/s, p50/p99 in ms and the error counts."""
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "60s",
        "-s",
        str(script),
        f"{url}/predict",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    line = next((out for out in done.stdout.splitlines() if out.startswith("WRK_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("WRK_RESULT "))
    ok = raw["requests"] - raw["status_errors"]
    errors = raw["status_errors"] + raw["timeouts"] + raw["connect_errors"] + raw["read_errors"]
    return {
        "rps": ok / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "requests": raw["requests"],
        "errors": errors + raw["write_errors"],
    }
