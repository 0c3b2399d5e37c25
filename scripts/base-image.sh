#!/usr/bin/env bash
# Build the local base image every project Dockerfile can start FROM when Docker Hub is out of
# reach (CI): Debian bookworm minbase + python3 + python3-venv + ca-certificates, made with
# mmdebstrap from Debian's own mirror and turned into an image with `docker import`.
#
#   scripts/base-image.sh [TAG]      # default keras-serving/base:bookworm; prints the tag
#
# Cached: nothing is done when the tag already exists (FORCE=1 rebuilds). Bookworm's python3 is
# 3.11, the same minor version as python:3.11-slim, the Dockerfiles' default BASE_IMAGE.
set -euo pipefail
tag=${1:-keras-serving/base:bookworm}

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "base-image: mmdebstrap missing (make system)" >&2; exit 1; }

start=$(date +%s)
work=$(mktemp -d)
# Where egress goes through a TLS-inspecting proxy, the host trusts extra CAs installed the Debian
# way (/usr/local/share/ca-certificates); the image must trust them too, or pip inside
# `docker build` fails certificate verification. PIP_CERT makes pip use the system bundle instead
# of its own copy of certifi. On a plain machine the folder is empty and nothing changes.
trust_host_cas=()
extra_env=()
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  trust_host_cas=(--customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"'
    --customize-hook='sync-in /usr/local/share/ca-certificates /usr/local/share/ca-certificates'
    --customize-hook='chroot "$1" update-ca-certificates >/dev/null 2>&1')
  extra_env=(--change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt')
fi
trap 'rm -rf "$work"' EXIT
# Docs, man pages and translations are of no use in a container; leaving them out saves space.
# A tarball first (not a pipe): a failed mmdebstrap must not leave an empty image behind the tag.
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  "${trust_host_cas[@]}" bookworm "$work/rootfs.tar"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' "${extra_env[@]}" \
  --message "mmdebstrap bookworm minbase + python3 python3-venv ca-certificates" \
  "$work/rootfs.tar" "$tag" >/dev/null
echo "base-image: built $tag in $(($(date +%s) - start)) s" >&2
echo "$tag"
