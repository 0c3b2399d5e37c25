"""Pin an unpacked chart to a release: the registry and image digests into values.yaml, the
images into Chart.yaml's `artifacthub.io/images` annotation. Used by scripts/release/release.sh.

    python3 scripts/release/pin_chart.py <chart dir> --registry R --version V \
        --digest gateway=sha256:... --digest model-loader=sha256:... --digest clothing-model=sha256:...

values.yaml is edited with ruamel.yaml's round trip, so every `## @param` comment a user reads
with `helm show values` survives. Each keras-serving image is found by its bare repository name
(the same rule charts/common applies), so a values path is never written twice.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

from ruamel.yaml import YAML

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_blocks(node, path=""):
    """(path, mapping) of every `{repository, tag?, digest}` mapping under node."""
    if isinstance(node, dict):
        if "repository" in node and "digest" in node:
            yield path, node
        for key, value in node.items():
            yield from image_blocks(value, f"{path}.{key}" if path else str(key))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chart", type=pathlib.Path)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--digest", action="append", default=[], metavar="NAME=sha256:...")
    args = parser.parse_args(argv)

    digests = dict(item.split("=", 1) for item in args.digest)
    bad = {name: d for name, d in digests.items() if not DIGEST.match(d)}
    if bad:
        parser.error(f"not sha256 digests: {bad}")

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    values_path = args.chart / "values.yaml"
    values = yaml.load(values_path.read_text())
    pinned = {}
    for path, block in image_blocks(values):
        name = str(block["repository"])
        if name in digests:
            block["digest"] = digests[name]
            pinned[name] = path
    missing = set(digests) - set(pinned)
    if missing:
        print(f"pin_chart: no bare repository {sorted(missing)} in {values_path}", file=sys.stderr)
        return 1
    values["global"]["imageRegistry"] = args.registry
    with values_path.open("w") as out:
        yaml.dump(values, out)

    chart_path = args.chart / "Chart.yaml"
    chart = yaml.load(chart_path.read_text())
    annotations = chart.setdefault("annotations", {})
    annotations["artifacthub.io/images"] = "".join(
        f"- name: {name}\n  image: {args.registry}/{name}@{digests[name]}\n" for name in sorted(pinned)
    )
    with chart_path.open("w") as out:
        yaml.dump(chart, out)
    for name, path in sorted(pinned.items()):
        print(f"pin_chart: {path}.digest = {digests[name]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
