#!/usr/bin/env python3
"""Turn readme-generator's schema into values.schema.json: strict and deterministic.

readme-generator derives types from the defaults in values.yaml. This makes the result strict:
1. every object that lists its properties rejects unknown keys (a misspelled value fails at
   install, not silently);
2. a "number" whose default is a whole number becomes "integer" (replicas, ports, counts);
3. scripts/values-schema-overlay.json entries (marked "$new" when the key is not generated) (enums, minimums, patterns, the url-needs-sha256
   rule) are merged into the node at their dotted values path.
Usage: values-schema.py GENERATED.json OVERLAY.json OUTPUT.json
"""

from __future__ import annotations

import json
import sys


def close_objects(node: dict) -> None:
    if node.get("type") == "object" and "properties" in node:
        node.setdefault("additionalProperties", False)
    if node.get("type") == "number" and isinstance(node.get("default"), int):
        node["type"] = "integer"
    for child in node.get("properties", {}).values():
        close_objects(child)


def node_at(schema: dict, dotted: str, create: bool) -> dict:
    node = schema
    for key in dotted.split("."):
        properties = node.setdefault("properties", {})
        if key not in properties:
            if not create:
                raise SystemExit(f"overlay path {dotted!r}: {key!r} is not in the generated schema")
            properties[key] = {}
        node = properties[key]
    return node


def merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value


def main(generated_path: str, overlay_path: str, output_path: str) -> None:
    with open(generated_path, encoding="utf-8") as f:
        schema = json.load(f)
    with open(overlay_path, encoding="utf-8") as f:
        overlay = json.load(f)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    close_objects(schema)
    for dotted, patch in overlay.items():
        if dotted.startswith("$"):
            continue
        patch = dict(patch)
        # "$new": a key readme-generator does not emit (a skipped value, Helm's copy of global)
        create = patch.pop("$new", False)
        merge(node_at(schema, dotted, create), patch)
    with open(output_path, "w", encoding="utf-8") as f:
        json.dump(schema, f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
