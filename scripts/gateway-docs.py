"""`make docs` (with scripts/values-docs.sh): regenerate docs/gateway.md's settings and error
tables from the gateway's code — gateway.settings.DOCS with Settings' defaults, and
gateway.errors.ERRORS — between their <!-- ...:start/end --> markers. Deterministic.

    python scripts/gateway-docs.py [docs/gateway.md]
"""

from __future__ import annotations

import pathlib
import re
import sys

from gateway.errors import ERRORS
from gateway.settings import DOCS, Settings


def _default(value) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, int):
        mib = f" ({value // 2**20} MiB)" if value >= 2**20 and value % 2**20 == 0 else ""
        return f"`{value}`{mib}"
    if isinstance(value, frozenset | set):
        return f"`{','.join(str(v) for v in sorted(value))}`" if value else "(none)"
    if isinstance(value, tuple):
        return f"`{','.join(str(v) for v in value)}`" if value else "(none)"
    return f"`{value}`" if value not in ("", None) else "(none)"


def settings_table() -> str:
    defaults = Settings()
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, (field, meaning, *shown) in DOCS.items():
        rows.append(f"| `{name}` | {shown[0] if shown else _default(getattr(defaults, field))} | {meaning} |")
    return "\n".join(rows)


def errors_table() -> str:
    rows = ["| Status | `code` | When |", "|---|---|---|"]
    for code, (status, when) in sorted(
        ERRORS.items(), key=lambda item: (item[1][0], list(ERRORS).index(item[0]))
    ):
        rows.append(f"| {status} | `{code}` | {when} |")
    return "\n".join(rows)


def replace(text: str, marker: str, table: str) -> str:
    pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(\n<!-- {marker}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"gateway-docs: no <!-- {marker}:start/end --> markers")
    return pattern.sub(lambda m: m.group(1) + table + m.group(2), text)


def main(argv: list[str]) -> int:
    path = pathlib.Path(argv[0] if argv else "docs/gateway.md")
    text = path.read_text()
    text = replace(text, "settings", settings_table())
    text = replace(text, "errors", errors_table())
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
