"""Reliability tier (integration): real `model serve`, real `python -m gateway`, real HTTP image
servers, all on loopback. Also the collector that turns each test's figures into
docs/reliability.md at the end of the run."""

from __future__ import annotations

import inspect
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))  # the helper modules next to the tests

from reliability_images import ImageServer  # noqa: E402
from reliability_processes import LABELS, MODEL_NAME, GatewayProcess, ModelServerProcess  # noqa: E402
from reliability_report import ReliabilityReport  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"

# A real (small) Keras image classifier, exported by the project's own `model convert` code:
# 32x32 input so that each prediction is cheap enough for 10,000 of them on a shared 2-core box.
_BUILD_MODEL = """
import pathlib, sys
import keras
from model_tools.convert import convert
base, labels = pathlib.Path(sys.argv[1]), sys.argv[2].split(",")
keras.utils.set_random_seed(11)
inputs = keras.Input(shape=(32, 32, 3), name="image")
x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
x = keras.layers.GlobalAveragePooling2D()(x)
outputs = keras.layers.Dense(len(labels), name="logits")(x)
keras.Model(inputs, outputs).save(base / "small.keras")
print(convert(base / "small.keras", base / "models", sys.argv[3], 1, labels=labels))
"""

_report: ReliabilityReport | None = None
_seconds = 0.0  # setup + call + teardown time of this folder's tests


def _in_this_folder(item: pytest.Item) -> bool:
    return HERE in pathlib.Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(config, items):
    global _report
    expected = {}
    for item in items:
        if _in_this_folder(item) and getattr(item, "function", None) is not None:
            doc = inspect.getdoc(item.function) or ""
            expected.setdefault(item.originalname, " ".join(doc.split("\n\n")[0].split()))
    if expected:
        _report = ReliabilityReport(expected)


def pytest_runtest_logreport(report):
    global _seconds
    if _report is None or report.when not in ("setup", "call", "teardown"):
        return
    name = report.nodeid.split("::")[-1].split("[")[0]
    if name not in _report.rows:
        return  # a test of another folder (one pytest run covers every tier)
    _seconds += report.duration
    if report.when == "call" or report.outcome != "passed":
        _report.outcome(name, report.outcome)


def pytest_sessionfinish(session, exitstatus):
    if _report is not None and any(row.outcome != "not run" for row in _report.rows.values()):
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(_report.markdown(_seconds))


@pytest.fixture(scope="session")
def report() -> ReliabilityReport:
    assert _report is not None
    return _report


@pytest.fixture
def record(report, request):
    """record(figure=value, ...) for the current test's row in docs/reliability.md."""
    return lambda **figures: report.record(request.node.originalname, **figures)


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("reliability-logs")


@pytest.fixture(scope="session")
def model_base(tmp_path_factory) -> pathlib.Path:
    """`<base>/clothing-model/1/` SavedModel (float32 input 32x32, logits + labels outputs)."""
    base = tmp_path_factory.mktemp("small-model")
    subprocess.run(
        [sys.executable, "-c", _BUILD_MODEL, str(base), ",".join(LABELS), MODEL_NAME],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return base / "models" / MODEL_NAME


@pytest.fixture(scope="session")
def model_server(model_base, logs_dir):
    """One `model serve` shared by the tests that do not kill it."""
    server = ModelServerProcess(model_base, MODEL_NAME, logs_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def image_server():
    """The image server the gateways may fetch from: 127.0.0.3 (allowed as 127.0.0.3/32)."""
    with ImageServer("127.0.0.3") as server:
        yield server


@pytest.fixture(scope="session")
def canary_server():
    """A server on 127.0.0.1 the gateways must never reach: any hit on it is an SSRF."""
    with ImageServer("127.0.0.1") as server:
        yield server


@pytest.fixture
def start_gateway(logs_dir):
    """start_gateway(env) -> a started GatewayProcess, killed at the end of the test."""
    started: list[GatewayProcess] = []

    def start(env: dict[str, str], **kwargs) -> GatewayProcess:
        gateway = GatewayProcess(env, logs_dir, **kwargs)
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.kill()
