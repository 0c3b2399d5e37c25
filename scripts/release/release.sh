#!/usr/bin/env bash
# make release: build every image the chart references, push them to an OCI registry, package the
# chart with the pushed digests written into its values, push it as an OCI artifact, sign images
# and chart with cosign, attach an SBOM per image, and print the `helm install oci://...` command.
#
#   make release [REGISTRY=127.0.0.1:5000] [OWNER=keras-serving] [VERSION=<Chart.yaml version>]
#                [SIGN=key|keyless|none] [PLATFORMS=linux/amd64,linux/arm64]
#
# REGISTRY  registry host[:port]; a loopback registry is spoken to over plain HTTP
#           (make registry-up starts one at 127.0.0.1:5000)
# OWNER     namespace under it: images are <REGISTRY>/<OWNER>/<name>, the chart
#           oci://<REGISTRY>/<OWNER>/charts/keras-serving
# VERSION   chart version and appVersion; the images are tagged with it (the model image with
#           the model version of values.yaml)
# SIGN      key: cosign with COSIGN_KEY (default .run/release/cosign.key, made on first use with an
#           empty password unless COSIGN_PASSWORD is set); keyless: Sigstore's OIDC flow (the
#           hosted release workflow); none
# PLATFORMS empty: the host's platform with `docker build` + `docker push`; a list: `docker buildx
#           build --push` per image, with BuildKit's SBOM and provenance attestations
# BASE_IMAGE passed to the Dockerfiles (e.g. the mmdebstrap base of scripts/base-image.sh)
# REGISTRY_USER, REGISTRY_PASSWORD  when set, docker and helm log in to REGISTRY first (cosign
#           reads Docker's credentials)
#
# Writes <OUT>/release.json (every reference and digest), the chart archive and the SBOMs
# (sbom/<image>.spdx.json, also attached to each image as a signed cosign attestation)
# (OUT default dist/release). The release workflow (.github/workflows/release.yml) runs exactly
# this target; the container tier runs it against a local registry and checks the result.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export PATH=$ROOT/.tools/bin:$ROOT/.venv/bin:$PATH

REGISTRY=${REGISTRY:-127.0.0.1:5000}
OWNER=${OWNER:-keras-serving}
OWNER=${OWNER,,}  # registries take lower-case names only (GitHub owners may have capitals)
VERSION=${VERSION:-$(sed -n 's/^version: *//p' Chart.yaml)}
SIGN=${SIGN:-key}
PLATFORMS=${PLATFORMS:-}
OUT=${OUT:-$ROOT/dist/release}
PREFIX=$REGISTRY/$OWNER
CHART_REPO=oci://$PREFIX/charts

die() { echo "release: $*" >&2; exit 1; }
say() { echo "release: $*" >&2; }

[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || die "VERSION=$VERSION is not a semantic version (X.Y.Z)"
case "$SIGN" in key|keyless|none) ;; *) die "SIGN=$SIGN: use key, keyless or none" ;; esac
for tool in docker helm python3; do command -v "$tool" >/dev/null || die "$tool is not on PATH"; done
[ "$SIGN" = none ] || command -v cosign >/dev/null || die "cosign is not on PATH (make tools builds it)"
[ -n "$PLATFORMS" ] || command -v syft >/dev/null || die "syft is not on PATH (make tools builds it)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (scripts/docker-engine.sh start)"

helm_http=() cosign_http=() scheme=https
case "${REGISTRY%%:*}" in
  127.*|localhost) helm_http=(--plain-http) cosign_http=(--allow-http-registry) scheme=http ;;
esac
if [ "$scheme" = http ]; then
  curl -fsS -o /dev/null "http://$REGISTRY/v2/" 2>/dev/null || die "no registry answers at http://$REGISTRY (make registry-up)"
fi

if [ -n "${REGISTRY_PASSWORD:-}" ]; then
  docker login "$REGISTRY" --username "${REGISTRY_USER:?REGISTRY_USER is needed with REGISTRY_PASSWORD}" \
    --password-stdin <<<"$REGISTRY_PASSWORD" >/dev/null
  helm registry login "$REGISTRY" --username "$REGISTRY_USER" --password-stdin <<<"$REGISTRY_PASSWORD" >/dev/null
fi

rm -rf "$OUT" && mkdir -p "$OUT/sbom"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model_version=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open("values.yaml"))["global"]["model"]["version"])')
build_args=()
[ -z "${BASE_IMAGE:-}" ] || build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
labels=(--label "org.opencontainers.image.version=$VERSION"
        --label "org.opencontainers.image.source=$(sed -n 's/^home: *//p' Chart.yaml)"
        --label "org.opencontainers.image.licenses=Apache-2.0")

declare -A DIGEST
# build_push NAME TAG DOCKERFILE CONTEXT [docker build args...]: DIGEST[NAME] = the pushed digest.
build_push() {
  local name=$1 tag=$2 dockerfile=$3 context=$4 ref=$PREFIX/$1:$2
  shift 4
  say "building and pushing $ref"
  if [ -n "$PLATFORMS" ]; then
    local platforms=$PLATFORMS
    # TensorFlow (pinned tensorflow-cpu) publishes no linux/arm64 wheel: the TF-Serving-compatible
    # development server is amd64 only; the gateway, loader and model images take every platform.
    [ "$name" != model-server-dev ] || platforms=linux/amd64
    docker buildx build --platform "$platforms" --push --provenance=mode=max --sbom=true \
      --metadata-file "$work/$name.json" -f "$dockerfile" -t "$ref" "${build_args[@]}" "${labels[@]}" "$@" "$context" >&2
    DIGEST[$name]=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$work/$name.json")
  else
    docker build -q -f "$dockerfile" -t "$ref" "${build_args[@]}" "${labels[@]}" "$@" "$context" >/dev/null
    docker push -q "$ref" >/dev/null
    # The registry's manifest digest, as Docker recorded it on push.
    DIGEST[$name]=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" \
                      | sed -n "s|^$PREFIX/$name@||p" | head -n 1)
  fi
  [[ ${DIGEST[$name]} == sha256:* ]] || die "no digest recorded for $ref"
}

build_push gateway "$VERSION" gateway/Dockerfile gateway
build_push model-loader "$VERSION" model/Dockerfile.loader model
build_push model-server-dev "$VERSION" model/Dockerfile.serve model
say "converting the demo model (as make demo serves it) into the model image"
[ "$model_version" = 1 ] || die "values.yaml's model version is $model_version; the demo model is version 1"
MODELS_DIR=$work/models STACK_DIR=$work/stack scripts/stack.sh convert >&2
build_push clothing-model "$model_version" model/Dockerfile.model-image "$work/models" \
  --build-arg "LOADER_IMAGE=$PREFIX/model-loader@${DIGEST[model-loader]}" \
  --build-arg "MODEL_DIR=clothing-model/$model_version" --build-arg MODEL_NAME=clothing-model \
  --build-arg "MODEL_VERSION=$model_version"

say "packaging the chart $VERSION with the digests"
helm package . --destination "$work/pkg" >/dev/null 2>"$work/package.log" || { cat "$work/package.log" >&2; die "helm package failed"; }
tar -xzf "$work"/pkg/*.tgz -C "$work"
python3 scripts/release/pin_chart.py "$work/keras-serving" --registry "$PREFIX" --version "$VERSION" \
  --digest "gateway=${DIGEST[gateway]}" --digest "model-loader=${DIGEST[model-loader]}" \
  --digest "clothing-model=${DIGEST[clothing-model]}"
helm lint --strict "$work/keras-serving" >/dev/null || die "the pinned chart does not lint: helm lint --strict $work/keras-serving"
helm package "$work/keras-serving" --version "$VERSION" --app-version "$VERSION" --destination "$OUT" >/dev/null
chart_archive=$OUT/keras-serving-$VERSION.tgz
push_log=$(helm push "$chart_archive" "$CHART_REPO" "${helm_http[@]}" 2>&1) || die "helm push failed: $push_log"
chart_digest=$(sed -n 's/^Digest: //p' <<<"$push_log")
[[ $chart_digest == sha256:* ]] || die "helm push printed no digest: $push_log"

refs=("$PREFIX/charts/keras-serving@$chart_digest")
for name in gateway model-loader model-server-dev clothing-model; do refs+=("$PREFIX/$name@${DIGEST[$name]}"); done

case "$SIGN" in
  key)
    COSIGN_KEY=${COSIGN_KEY:-$ROOT/.run/release/cosign.key}
    export COSIGN_PASSWORD=${COSIGN_PASSWORD:-}
    if [ ! -f "$COSIGN_KEY" ]; then
      say "no $COSIGN_KEY: generating a key pair for local releases"
      mkdir -p "$(dirname "$COSIGN_KEY")"
      (cd "$(dirname "$COSIGN_KEY")" && cosign generate-key-pair --output-key-prefix "$(basename "$COSIGN_KEY" .key)" >/dev/null 2>&1)
    fi
    sign_args=(--key "$COSIGN_KEY" --tlog-upload=false) ;;
  keyless) sign_args=() ;;
esac

for ref in "${refs[@]}"; do
  name=${ref#"$PREFIX"/}; name=${name%@*}
  if [ -z "$PLATFORMS" ] && [ "$name" != charts/keras-serving ]; then
    # An SPDX SBOM of the image as pushed (syft reads it from the registry); with PLATFORMS,
    # BuildKit attached its own (--sbom=true) per platform.
    sbom=$OUT/sbom/$name.spdx.json
    SYFT_CHECK_FOR_APP_UPDATE=false SYFT_REGISTRY_INSECURE_USE_HTTP=$([ "$scheme" = http ] && echo true || echo false) \
      syft scan -q "registry:$ref" -o "spdx-json=$sbom" >&2 || die "syft could not scan $ref"
  fi
  if [ "$SIGN" != none ]; then
    say "signing $ref"
    cosign sign --yes "${cosign_http[@]}" "${sign_args[@]}" "$ref" >/dev/null 2>"$work/sign.log" \
      || { cat "$work/sign.log" >&2; die "cosign sign $ref failed"; }
    if [ -n "${sbom:-}" ] && [ -f "$sbom" ]; then
      cosign attest --yes "${cosign_http[@]}" "${sign_args[@]}" --type spdxjson --predicate "$sbom" "$ref" \
        >/dev/null 2>"$work/sign.log" || { cat "$work/sign.log" >&2; die "cosign attest $ref failed"; }
    fi
  fi
  sbom=
done

python3 - "$OUT/release.json" "$PREFIX" "$VERSION" "$SIGN" "${COSIGN_KEY:-}" "$chart_digest" \
  "gateway=$VERSION@${DIGEST[gateway]}" "model-loader=$VERSION@${DIGEST[model-loader]}" \
  "model-server-dev=$VERSION@${DIGEST[model-server-dev]}" \
  "clothing-model=$model_version@${DIGEST[clothing-model]}" <<'PY'
import json, sys
out, prefix, version, sign, key, chart_digest, *images = sys.argv[1:]
release = {"registry": prefix, "version": version, "signed": sign,
           "public_key": key[:-len(".key")] + ".pub" if sign == "key" else None,
           "chart": {"ref": f"oci://{prefix}/charts/keras-serving", "version": version,
                     "digest": chart_digest}, "images": {}}
for item in images:
    name, rest = item.split("=", 1)
    tag, digest = rest.split("@", 1)
    release["images"][name] = {"ref": f"{prefix}/{name}:{tag}", "digest": digest}
json.dump(release, open(out, "w"), indent=2)
PY

plain=${helm_http[*]:+ --plain-http}
echo
echo "Released keras-serving $VERSION to $PREFIX ($( [ "$SIGN" = none ] && echo unsigned || echo "signed: $SIGN")):"
for name in gateway model-loader model-server-dev clothing-model; do echo "  $PREFIX/$name@${DIGEST[$name]}"; done
echo "  $CHART_REPO/keras-serving:$VERSION@$chart_digest"
echo
echo "Install it:"
echo "  helm install serving $CHART_REPO/keras-serving --version $VERSION$plain --namespace ml --create-namespace"
if [ "$SIGN" = key ]; then
  echo "Verify it:"
  echo "  cosign verify --key ${COSIGN_KEY%.key}.pub --insecure-ignore-tlog${cosign_http:+ --allow-http-registry} $PREFIX/gateway@${DIGEST[gateway]}"
fi
