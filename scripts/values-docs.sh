#!/usr/bin/env bash
# `make docs`: regenerate the "## Parameters" table of docs/parameters.md and values.schema.json from the
# `## @param` comments in values.yaml, then apply the hand-written schema tightening
# (scripts/values-schema-overlay.json). Deterministic: running it twice changes nothing.
#   scripts/values-docs.sh [TABLE] [SCHEMA]   (defaults: docs/parameters.md values.schema.json)
set -euo pipefail
cd "$(dirname "$0")/.."
readme=${1:-docs/parameters.md}
schema=${2:-values.schema.json}
generator=${READMEGEN:-.tools/bin/readme-generator}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$generator" --values values.yaml --readme "$readme" --schema "$work/generated.json" >"$work/log" 2>&1 \
  || { cat "$work/log" >&2; exit 1; }
python3 scripts/values-schema.py "$work/generated.json" scripts/values-schema-overlay.json "$schema"
