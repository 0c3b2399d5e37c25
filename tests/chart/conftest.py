"""Chart-tier fixtures (helpers live in chart_render.py: a uniquely named module, because
several conftest.py files in this repository share the module name `conftest`)."""

from __future__ import annotations

import pytest
from chart_render import render


@pytest.fixture(scope="session")
def default_objects() -> list[dict]:
    return render()
