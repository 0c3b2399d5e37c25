"""Every number renders as an integer: Helm decodes values files, --set-json and the values a
release stores for --reuse-values as float64, which Go templates print as 1.7e+09."""

from __future__ import annotations

import json
import re

import pytest
from chart_render import MODEL_SERVER, REGISTRY, SCENARIOS, container, find, pod_spec, run_helm, scenario_id

FLOAT_NOTATION = re.compile(r"\b\d+(\.\d+)?e[+-]?\d+\b", re.IGNORECASE)
TIMESTAMP = 1700000000  # Unix-timestamp versions: the common export convention


def _assert_no_float_notation(text: str) -> None:
    hits = sorted({m.group(0) for m in FLOAT_NOTATION.finditer(text)})
    assert not hits, f"numbers rendered in float notation: {hits}"


def _timestamp_version_objects(*args: str) -> list[dict]:
    import yaml

    return [
        d for d in yaml.safe_load_all(run_helm("template", "serving", ".", "-n", "ml", *args).stdout) if d
    ]


@pytest.mark.parametrize("source", ["values file", "--set-json (as stored for --reuse-values)"])
def test_timestamp_versions_render_as_digits_everywhere(source, tmp_path):
    if source == "values file":
        values = tmp_path / "v.yaml"
        values.write_text(f"global:\n  model:\n    version: {TIMESTAMP}\n")
        args = ("-f", str(values))
    else:
        # The release's stored values are JSON: a number comes back as a float64, like here.
        args = ("--set-json", f"global.model.version={json.dumps(TIMESTAMP)}")
    objects = _timestamp_version_objects(*args)
    deployment = find(objects, "Deployment", MODEL_SERVER)
    spec = pod_spec(deployment)
    assert deployment["spec"]["template"]["metadata"]["labels"]["keras-serving.io/model-version"] == str(
        TIMESTAMP
    )
    (init,) = spec["initContainers"]
    assert init["image"] == f"{REGISTRY}/clothing-model:{TIMESTAMP}"
    assert init["args"][-1] == f"/models/clothing-model/{TIMESTAMP}"
    probe = container(deployment, "model-server")["readinessProbe"]["httpGet"]["path"]
    assert probe == f"/v1/models/clothing-model/versions/{TIMESTAMP}/metadata"


def test_large_numbers_in_every_numeric_value_render_as_integers(tmp_path):
    values = tmp_path / "big.yaml"
    values.write_text("""
global:
  model:
    version: 2000000001
gateway:
  replicaCount: 1000000
  terminationGracePeriodSeconds: 3000000
  config:
    fetchMaxBytes: 2000000000
    maxImagePixels: 2000000000
    maxRequestBytes: 2000000000
    maxBufferedBytes: 8000000000
    shutdownGraceSeconds: 2000000
    grpcTimeoutSeconds: 1000000
modelServer:
  replicaCount: 1000000
  terminationGracePeriodSeconds: 5000000
  preStopSleepSeconds: 4000000
  fileSystemPollWaitSeconds: 1000000
  startupProbe: {periodSeconds: 1000000, failureThreshold: 1000000}
  connections: {maxConnectionAgeSeconds: 1000000, maxConnectionAgeGraceSeconds: 1000000}
  batching: {enabled: true, maxBatchSize: 1000000, batchTimeoutMicros: 5000000, maxEnqueuedBatches: 1000000, numBatchThreads: 1000000}
""")
    _assert_no_float_notation(run_helm("template", "serving", ".", "-f", str(values)).stdout)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_id)
def test_no_float_notation_in_any_scenario(scenario):
    _assert_no_float_notation(run_helm("template", "serving", ".", "-f", str(scenario)).stdout)


def test_the_float_notation_check_catches_what_it_is_for():
    with pytest.raises(AssertionError, match="1.7e"):
        _assert_no_float_notation("tag: 1.7e+09")
    _assert_no_float_notation("sha256: 4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945")
