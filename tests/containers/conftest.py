"""Container tier fixtures: the engine and image builds (image_fixtures.py, shared with the
cluster tier), and cleanup: every container and network a test creates carries a label and is
removed at the end of the test, pass or fail.
"""

from __future__ import annotations

import pathlib

import pytest
from docker_tools import LABEL, Containers, docker
from image_fixtures import *  # noqa: F401,F403 (session fixtures shared with the cluster tier)


@pytest.fixture
def containers(docker_engine, request):
    c = Containers()
    yield c
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(c.logs())
    c.remove_all()
    left = docker("ps", "-aq", "--filter", f"label={LABEL}={c.run_id}", check=False).stdout.split()
    assert not left, f"containers left behind: {left}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def pytest_collection_modifyitems(items):
    # Session fixtures build images inside whichever test needs them first (TensorFlow's image
    # takes minutes on a cold cache): a wider per-test bound than pytest.ini's 600 s.
    here = pathlib.Path(__file__).parent
    for item in items:
        if here in pathlib.Path(str(item.path)).parents and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(1800))
