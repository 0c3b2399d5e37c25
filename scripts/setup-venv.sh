#!/usr/bin/env bash
# Create the project environment .venv (idempotent): pinned packages from requirements/dev.txt,
# then the two local packages (gateway, model tooling) in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" -r requirements/dev.txt -c requirements/constraints.txt
# TF Serving's API modules. The gateway image takes them from tensorflow-protobuf (no TensorFlow);
# here real TensorFlow is installed, so take the official tensorflow-serving-api, whose modules
# build on TensorFlow's own protos. --no-deps: it names the 'tensorflow' distribution, and
# tensorflow-cpu already provides those modules.
"${pip[@]}" --no-deps tensorflow-serving-api==2.21.0
"${pip[@]}" --no-deps -e ./gateway -e ./model
