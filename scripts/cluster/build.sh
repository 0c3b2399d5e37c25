#!/usr/bin/env bash
# Build everything the test cluster runs, from Go modules and Debian packages, into a cache
# folder keyed by the inputs (so a second run, or a fresh clone on the same machine, builds
# nothing). Prints the folder on its last line:
#   <cache>/bin-<key>/   kube (multi-call: etcd, kube-apiserver, ..., coredns, metrics-server)
#                        and a symlink per component; traefik; kube-router; local-path-provisioner;
#                        images/*.tar (pause, busybox)
# Go's own build and module caches (GOCACHE, GOMODCACHE) make a changed input cheap to rebuild.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

command -v go >/dev/null || die "the Go toolchain is missing (https://go.dev/dl/)"
command -v gcc >/dev/null || die "gcc is missing (apt-get install gcc libc6-dev)"

k8s_version=$(cd "$ROOT/cluster/kube" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
key=$( { go version; echo "$k8s_version"; cat "$0" "$ROOT"/cluster/kube/go.* "$ROOT"/cluster/kube/*.go \
          "$ROOT"/cluster/traefik/go.* "$ROOT"/cluster/kube-router/go.* \
          "$ROOT"/cluster/local-path-provisioner/go.* "$ROOT"/cluster/images/* \
          "$ROOT/cluster/cluster.env"; } | sha256sum | cut -c1-16)
out=$KS_CLUSTER_CACHE/bin-$key
if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$KS_CLUSTER_CACHE"
exec 9>"$KS_CLUSTER_CACHE/build.lock"
flock -w 3600 9 || die "another build holds $KS_CLUSTER_CACHE/build.lock"
[ -f "$out/.complete" ] && { echo "$out"; exit 0; }
work=$out.partial
rm -rf "$work"
mkdir -p "$work/images"
started=$SECONDS

# Kubernetes reports the version it was built as (kubectl version, helm's .Capabilities):
# stamp it as the release build does (hack/lib/version.sh).
minor=$(echo "$k8s_version" | cut -d. -f2)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
say "building kube $k8s_version (etcd, control plane, kubelet, kube-proxy, coredns, metrics-server)" >&2
(cd "$ROOT/cluster/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$work/kube" .) >&2
for c in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns metrics-server; do
  ln -s kube "$work/$c"
done
say "building traefik" >&2
(cd "$ROOT/cluster/traefik" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/traefik" \
  github.com/traefik/traefik/v3/cmd/traefik) >&2

say "building kube-router" >&2
(cd "$ROOT/cluster/kube-router" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/kube-router" \
  github.com/cloudnativelabs/kube-router/v2/cmd/kube-router) >&2

say "building local-path-provisioner" >&2
(cd "$ROOT/cluster/local-path-provisioner" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
  -o "$work/local-path-provisioner" github.com/rancher/local-path-provisioner) >&2

say "building the cluster's images" >&2
gcc -static -Os -s -o "$work/pause" "$ROOT/cluster/images/pause.c"
python3 "$ROOT/cluster/images/archive_image.py" --tag "$KS_PAUSE_IMAGE" --out "$work/images/pause.tar" \
  --file "$work/pause:/pause:755" --entrypoint /pause --user 65535:65535
busybox=/bin/busybox
[ -x "$busybox" ] || die "$busybox is missing (apt-get install busybox-static)"
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || ldd "$busybox" 2>&1 | grep -q 'not a dynamic' \
  || die "$busybox is not statically linked (apt-get install busybox-static)"
links=()
for applet in sh mkdir rm rmdir chmod ls cat sleep nc wget; do links+=(--link "/bin/busybox:/bin/$applet"); done
python3 "$ROOT/cluster/images/archive_image.py" --tag "$KS_BUSYBOX_IMAGE" --out "$work/images/busybox.tar" \
  --file "$busybox:/bin/busybox:755" "${links[@]}" --cmd /bin/sh
rm -f "$work/pause"

touch "$work/.complete"
rm -rf "$out"
mv "$work" "$out"
say "built in $((SECONDS - started)) s" >&2
echo "$out"
