"""Repository-wide pytest setup: test tiers, tool PATH, and the per-tier summary.

Every test belongs to exactly one tier (see ARCHITECTURE.md "Test tiers"). A test may name its
tier with a marker; otherwise its folder decides. In CI (CI=true) a skipped test fails the run:
a test that skips there proves nothing.
"""

from __future__ import annotations

import collections
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent
TIERS = ("unit", "chart", "integration", "containers", "cluster")
_FOLDER_TIERS = {
    "tests/chart": "chart",
    "tests/containers": "containers",
    "tests/cluster": "cluster",
    "tests/e2e": "integration",
    "tests/reliability": "integration",
}

# helm, kubectl, checkov and friends are installed into .tools/bin by `make tools`.
os.environ["PATH"] = os.pathsep.join(
    [str(ROOT / ".tools" / "bin"), str(ROOT / ".venv" / "bin"), os.environ.get("PATH", "")]
)

# tests/support: helpers several tiers' folders import (`from support.phone_photos import ...`).
sys.path.insert(0, str(ROOT / "tests"))

_outcomes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
_tier_of: dict[str, str] = {}


def _tier_for(item: pytest.Item) -> str:
    marked = [t for t in TIERS if item.get_closest_marker(t)]
    if len(marked) > 1:
        raise pytest.UsageError(f"{item.nodeid} is marked with several tiers: {marked}")
    if marked:
        return marked[0]
    rel = pathlib.Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
    for folder, tier in _FOLDER_TIERS.items():
        if rel.startswith(folder + "/"):
            return tier
    return "unit"


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = _tier_for(item)
        if not item.get_closest_marker(tier):
            item.add_marker(getattr(pytest.mark, tier))
        _tier_of[item.nodeid] = tier
    # The cluster tier last: it reuses the images the container tier built, and the cluster it
    # starts (stopped at the end of the session) does not load the machine during other tiers.
    items.sort(key=lambda item: _tier_of[item.nodeid] == "cluster")


def pytest_runtest_logreport(report):
    tier = _tier_of.get(report.nodeid, "unit")
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome = "error" if report.failed and report.when == "setup" else report.outcome
        _outcomes[tier][outcome] += 1
    elif report.when == "teardown" and report.failed:
        _outcomes[tier]["error"] += 1


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _outcomes:
        return
    tr = terminalreporter
    tr.section("per-tier summary")
    for tier in TIERS:
        c = _outcomes.get(tier, collections.Counter())
        tr.write_line(
            f"{tier:<12} {c['passed']:>4} passed {c['failed']:>4} failed "
            f"{c['error']:>4} errors {c['skipped']:>4} skipped"
        )
    skipped = sum(c["skipped"] for c in _outcomes.values())
    if _in_ci() and skipped:
        tr.write_line(f"CI=true: {skipped} skipped test(s) count as failures", red=True)


def pytest_sessionfinish(session, exitstatus):
    if _in_ci() and any(c["skipped"] for c in _outcomes.values()) and exitstatus == 0:
        session.exitstatus = 1
