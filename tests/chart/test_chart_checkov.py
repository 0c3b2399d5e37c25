"""checkov (--framework helm) finds 0 failed checks in every ci/ scenario.

checkov's helm runner renders a chart with `helm template --dependency-update <dir>
--values <var-file>` (checkov/helm/runner.py), so each scenario is passed as --var-file and only
the umbrella chart is named (--file Chart.yaml; a directory scan would also render the subcharts
alone, without the umbrella's values). It scans a copy of the *packaged* chart: that is what users
install, and --dependency-update rewrites Chart.lock in the directory it renders. Without helm on
PATH checkov silently scans nothing, so the summary line is asserted, not just the exit code.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import re
import shutil
import subprocess
import tarfile
import time

import pytest
from chart_render import REGISTRY_VALUES, SCENARIOS, run_helm, scenario_id

# Skipped everywhere, with the reason. (The helm test pod also skips the probe checks through
# checkov.io/skip annotations in templates/tests/test-prediction.yaml.)
SKIPPED_CHECKS = {
    "CKV_K8S_21": "checkov renders without --namespace; objects go to the release namespace (helm -n)",
    "CKV_K8S_43": "digests are supported (image.digest) but not defaultable: tags are pinned, never latest",
    "CKV_K8S_15": "IfNotPresent on pinned tags; Always would break local images (kind load, podman)",
}
SUMMARY = re.compile(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)")


def checkov_binary() -> str:
    found = shutil.which("checkov")
    if not found:
        raise RuntimeError("checkov is not on PATH: run `make tools`")
    return found


def scan(chart_yaml: pathlib.Path, scenario: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            checkov_binary(),
            "--framework",
            "helm",
            "--skip-download",
            "--compact",
            "--file",
            str(chart_yaml),
            "--var-file",
            str(REGISTRY_VALUES),
            "--var-file",
            str(scenario),
            "--skip-check",
            ",".join(SKIPPED_CHECKS),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )


@pytest.fixture(scope="module")
def checkov_results(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """One checkov run per scenario, in parallel (each run is mostly helm and Python start-up)."""
    work = tmp_path_factory.mktemp("checkov")
    run_helm("package", ".", "--destination", str(work))
    (archive,) = work.glob("*.tgz")
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    chart_yaml = work / "keras-serving" / "Chart.yaml"
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {scenario_id(s): pool.submit(scan, chart_yaml, s) for s in SCENARIOS}
        results = {name: f.result() for name, f in futures.items()}
    print(f"checkov: {len(results)} scenarios in {time.monotonic() - started:.1f} s")
    return results


@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_id)
def test_checkov_finds_no_failed_check(checkov_results, scenario):
    proc = checkov_results[scenario_id(scenario)]
    match = SUMMARY.search(proc.stdout)
    assert match, f"checkov printed no summary (nothing scanned?):\n{proc.stdout}\n{proc.stderr}"
    passed, failed, _skipped = map(int, match.groups())
    assert passed > 100, f"only {passed} checks ran: the chart was not really rendered"
    assert failed == 0, proc.stdout
    assert "PASSED for resource: Deployment.default.release-name-model-server" in proc.stdout


def test_checkov_scans_each_scenario_with_its_own_values(checkov_results):
    assert "PASSED for resource: Ingress." in checkov_results["07-ingress-tls"].stdout
    assert "PASSED for resource: Ingress." not in checkov_results["01-defaults"].stdout
