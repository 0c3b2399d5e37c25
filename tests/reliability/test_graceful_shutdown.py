"""Graceful shutdown: SIGTERM while requests are in flight, within the chart's grace period."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import yaml
from reliability_processes import ROOT, gateway_env

# The source tree's image defaults need a registry (tests/chart/registry-values.yaml says why).
REGISTRY_VALUES = ROOT / "tests" / "chart" / "registry-values.yaml"

IN_FLIGHT = 6
SLOW_SECONDS = 3


def chart_shutdown_settings() -> tuple[int, int, dict[str, str]]:
    """(terminationGracePeriodSeconds, preStop sleep seconds, the SHUTDOWN_* variables of the
    gateway ConfigMap) rendered by the real chart with its defaults: the gateway, run with those
    variables, must be gone within grace minus preStop."""
    helm = ROOT / ".tools" / "bin" / "helm"
    rendered = subprocess.run(
        [str(helm), "template", "serving", str(ROOT), "--values", str(REGISTRY_VALUES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    docs = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "serving-gateway")
    shutdown_env = {k: str(v) for k, v in config["data"].items() if k.startswith("SHUTDOWN_")}
    deployment = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "serving-gateway"
    )
    pod = deployment["spec"]["template"]["spec"]
    command = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    return int(pod["terminationGracePeriodSeconds"]), int(command[1]), shutdown_env


def _new_connection_outcome(port: int) -> str:
    """What a brand-new client gets: 'refused', 'reset/closed' or the status line it was served."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = sock.recv(200)
            return data.split(b"\r\n")[0].decode() if data else "reset/closed"
    except ConnectionRefusedError:
        return "refused"
    except (ConnectionResetError, BrokenPipeError):
        return "reset/closed"
    except TimeoutError:
        return "hung"


def test_sigterm_drains_in_flight_requests_within_the_chart_grace_period(
    model_server, image_server, start_gateway, record
):
    """SIGTERM with 6 slow URL predictions in flight, the gateway run with the chart's SHUTDOWN_*
    settings: all 6 complete with 200, a new connection is refused (after SHUTDOWN_DELAY_SECONDS,
    if set), and the process exits 0 within the chart's terminationGracePeriodSeconds minus its
    preStop sleep."""
    grace, pre_stop, shutdown_env = chart_shutdown_settings()
    budget = grace - pre_stop
    delay = float(shutdown_env.get("SHUTDOWN_DELAY_SECONDS", "0"))
    gateway = start_gateway(gateway_env(model_server.target, image_server.port, THREADS="8", **shutdown_env))
    gateway.wait_ready()
    slow_path = f"/slow/{SLOW_SECONDS}"
    hits_before = image_server.hits.get(slow_path, 0)

    def slow_prediction():
        response = requests.post(
            gateway.base + "/predict", json={"url": image_server.url(slow_path)}, timeout=60
        )
        return response.status_code, response.json()

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = [pool.submit(slow_prediction) for _ in range(IN_FLIGHT)]
        deadline = time.monotonic() + 20
        while image_server.hits.get(slow_path, 0) - hits_before < IN_FLIGHT and time.monotonic() < deadline:
            time.sleep(0.02)
        assert image_server.hits.get(slow_path, 0) - hits_before == IN_FLIGHT, "requests never got in flight"
        signalled = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        time.sleep(delay + 0.3)  # SHUTDOWN_DELAY_SECONDS: still accepting while endpoints update
        new_connection = _new_connection_outcome(gateway.port)
        answers = [f.result() for f in futures]
        completed_after = time.monotonic() - signalled
    try:
        exit_code = gateway.process.wait(budget + 5)
    except subprocess.TimeoutExpired:
        exit_code = None
    exited_after = time.monotonic() - signalled
    record(
        in_flight_at_sigterm=IN_FLIGHT,
        completed_200=sum(status == 200 for status, _ in answers),
        in_flight_done_after_s=round(completed_after, 2),
        new_connection=new_connection,
        exit_code=exit_code,
        exited_after_s=round(exited_after, 2),
        chart_grace_s=grace,
        chart_prestop_s=pre_stop,
        chart_shutdown_env=shutdown_env or "none",
    )
    assert all(status == 200 for status, _ in answers), answers
    assert new_connection in ("refused", "reset/closed"), new_connection
    assert exit_code == 0, gateway.log_text()[-3000:]
    assert exited_after < budget
    assert "Traceback" not in gateway.log_text()


def test_sigterm_stops_a_gateway_started_with_sigint_ignored(model_server, image_server, logs_dir, record):
    """A gateway started with SIGINT ignored (a background job of a non-interactive shell, nohup)
    still exits 0 promptly on SIGTERM: the drain's stop signal must not depend on the parent."""
    from reliability_processes import GatewayProcess

    gateway = GatewayProcess(gateway_env(model_server.target, image_server.port), logs_dir)
    # What a non-interactive shell does for `cmd &` (and nohup for SIGHUP): ignore, then exec.
    gateway.launcher = ["sh", "-c", 'trap "" INT; exec "$@"', "sh"]
    with gateway:
        signalled = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        try:
            exit_code = gateway.process.wait(10)
        except subprocess.TimeoutExpired:
            exit_code = None
        exited_after = time.monotonic() - signalled
    record(exit_code=exit_code, exited_after_s=round(exited_after, 2))
    assert exit_code == 0, gateway.log_text()[-2000:]


@pytest.mark.chart
@pytest.mark.parametrize("scenario", sorted((ROOT / "ci").glob("*-values.yaml")), ids=lambda p: p.name)
def test_chart_grace_period_outlasts_the_slowest_request(scenario, report):
    """Every ci/ scenario: preStop sleep + SHUTDOWN_DELAY_SECONDS + the longest a request can take
    (FETCH_TIMEOUT_SECONDS + GRPC_TIMEOUT_SECONDS) fits inside the gateway's
    terminationGracePeriodSeconds, so a draining gateway is never SIGKILLed mid-request."""
    helm = ROOT / ".tools" / "bin" / "helm"
    rendered = subprocess.run(
        [
            str(helm),
            "template",
            "serving",
            str(ROOT),
            "--values",
            str(REGISTRY_VALUES),
            "--values",
            str(scenario),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    docs = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "serving-gateway")[
        "data"
    ]
    pod = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "serving-gateway")[
        "spec"
    ]["template"]["spec"]
    pre_stop = float(pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
    slowest = float(config["FETCH_TIMEOUT_SECONDS"]) + float(config["GRPC_TIMEOUT_SECONDS"])
    needed = pre_stop + float(config.get("SHUTDOWN_DELAY_SECONDS", 0)) + slowest
    grace = pod["terminationGracePeriodSeconds"]
    figures = report.rows["test_chart_grace_period_outlasts_the_slowest_request"].figures
    figures.setdefault("needed_s / grace_s", []).append(f"{scenario.name[:2]}: {needed:g}/{grace}")
    assert needed < grace, (scenario.name, needed, grace)
