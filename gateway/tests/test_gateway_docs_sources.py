"""The gateway's settings and error codes are each written once in code (gateway.settings.DOCS
with Settings' defaults; gateway.errors.ERRORS) and docs/gateway.md's tables are generated from
them (scripts/gateway-docs.py, run by `make docs`): these tests keep code, catalogue and docs
from drifting apart."""

from __future__ import annotations

import ast
import pathlib
import re
import shutil
import subprocess
import sys

from gateway.errors import ERRORS
from gateway.settings import DOCS, Settings

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "gateway" / "src" / "gateway"


class _Recording(dict):
    """An empty environment that remembers which variables were asked for."""

    def __init__(self):
        super().__init__()
        self.asked: list[str] = []

    def get(self, key, default=None):
        self.asked.append(key)
        return default


def test_every_variable_read_is_documented_and_every_documented_one_is_read():
    env = _Recording()
    Settings.from_env(env)
    assert sorted(env.asked) == sorted(DOCS)
    defaults = Settings()
    assert all(hasattr(defaults, field) for field, *_ in DOCS.values())


def _status_code_pairs() -> set[tuple[int, str]]:
    """(status, code) pairs written in the gateway's source: GatewayError/error_response calls,
    bad_request calls (400), (status, code, ...) tuples and {status: code} maps."""
    pairs = set()
    for path in SOURCE.glob("*.py"):
        module = ast.parse(path.read_text())
        # The catalogue itself is what the pairs are checked against, not a use of it.
        module.body = [
            stmt
            for stmt in module.body
            if not (isinstance(stmt, ast.AnnAssign) and getattr(stmt.target, "id", "") == "ERRORS")
        ]
        for node in ast.walk(module):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                args = [a.value if isinstance(a, ast.Constant) else None for a in node.args[:2]]
                if (
                    name in ("GatewayError", "error_response")
                    and isinstance(args[0], int)
                    and isinstance(args[1], str)
                ):
                    pairs.add((args[0], args[1]))
                elif name == "bad_request" and isinstance(args[0], str):
                    pairs.add((400, args[0]))
            elif isinstance(node, ast.Tuple) and len(node.elts) >= 2:
                first, second = node.elts[:2]
                if (
                    isinstance(first, ast.Constant)
                    and isinstance(first.value, int)
                    and 400 <= first.value < 600
                    and isinstance(second, ast.Constant)
                    and isinstance(second.value, str)
                ):
                    pairs.add((first.value, second.value))
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if (
                        isinstance(key, ast.Constant)
                        and isinstance(key.value, int)
                        and 400 <= key.value < 600
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        pairs.add((key.value, value.value))
    return pairs


def test_every_error_the_code_answers_is_in_the_catalogue_with_its_status():
    written = _status_code_pairs()
    assert len(written) > 20
    unknown = {(status, code) for status, code in written if ERRORS.get(code, (None,))[0] != status}
    assert not unknown, f"add these to gateway.errors.ERRORS (or fix the status): {sorted(unknown)}"
    unused = set(ERRORS) - {code for _, code in written}
    assert not unused, f"catalogue entries no code answers with: {sorted(unused)}"


def test_docs_tables_are_generated_from_the_code(tmp_path):
    copy = tmp_path / "gateway.md"
    shutil.copy(ROOT / "docs" / "gateway.md", copy)
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gateway-docs.py"), str(copy)], check=True, timeout=60
    )
    assert copy.read_text() == (ROOT / "docs" / "gateway.md").read_text(), "run `make docs`"


def test_the_connection_limits_in_the_docs_are_the_servers():
    """docs/gateway.md's **Connections** paragraph quotes gateway.server's two time limits."""
    from gateway import server

    text = (ROOT / "docs" / "gateway.md").read_text()
    paragraph = text[text.index("**Connections.**") :].split("\n\n")[0]
    quoted = {float(n) for n in re.findall(r"(\d+) s\b", paragraph)}
    assert {server.KEEPALIVE_SECONDS, server.BODY_SECONDS} <= quoted, paragraph


def test_the_memory_paragraph_quotes_the_body_budget_and_the_charts_memory_limit():
    """docs/gateway.md's **Memory** paragraph argues from two numbers written elsewhere: the
    default MAX_BUFFERED_BYTES and the chart's gateway memory limit (values.yaml)."""
    import yaml

    text = (ROOT / "docs" / "gateway.md").read_text()
    paragraph = text[text.index("**Memory.**") :].split("\n\n")[0]
    quoted = {int(n) for n in re.findall(r"(\d+) MiB", paragraph)}
    limit = yaml.safe_load((ROOT / "values.yaml").read_text())["gateway"]["resources"]["limits"]["memory"]
    assert limit.endswith("Mi"), limit
    assert {Settings().max_buffered_bytes // 2**20, int(limit[:-2])} <= quoted, paragraph
    # Room for one base64 body being decoded (~3x) beside the others: the claim the docs make.
    assert Settings().max_buffered_bytes * 3 < int(limit[:-2]) * 2**20
