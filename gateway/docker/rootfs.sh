#!/bin/sh
# Assemble the gateway's runtime filesystem in $1 (the final stage is FROM scratch + this tree):
# the interpreter the venv points at, its standard library without the parts a server never
# imports, the venv, the gateway, the shared libraries all of these load (found with ldd, so the
# same script works on python:3.11-slim and on Debian's python3), and `sleep` for the chart's
# preStop hook. No shell, no package manager, no pip: nothing in the image can install or
# compile anything. Runs in the build stage.
set -eu
out=$1
mkdir -p "$out"
# Keep the base's merged-/usr links (/lib -> usr/lib, ...): library paths that ldd reports
# through /lib and the loader's absolute links then land where the loader looks.
for dir in bin sbin lib lib32 lib64 libx32; do
  [ -L "/$dir" ] || continue
  mkdir -p "$out/$(readlink "/$dir")"
  ln -s "$(readlink "/$dir")" "$out/$dir"
done
copy() {  # copy PATH... into $out at the same path, symlinks kept as symlinks
  for path in "$@"; do cp -a --parents "$path" "$out"; done
}
copy_resolved() {  # copy the file a path names (following symlinks) and the path itself
  for path in "$@"; do
    real=$(readlink -f "$path")
    cp -a --parents "$real" "$out"
    [ "$real" = "$path" ] || cp -a --parents "$path" "$out"
  done
}

# The interpreter: follow the venv's python symlinks link by link, copying each.
link=/opt/venv/bin/python3
while [ -L "$link" ]; do
  copy "$link"
  target=$(readlink "$link")
  case $target in /*) link=$target ;; *) link=$(dirname "$link")/$target ;; esac
done
copy "$link"
python=$link

stdlib=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
dynload=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["platstdlib"])')/lib-dynload
mkdir -p "$out$stdlib"
# Left out: what only development, GUIs, packaging, Python 2 conversion, terminals, local databases
# and CPython's own tests use (with the libraries they would load: libdb, sqlite, readline, krb5).
tar -C "$stdlib" -cf - \
    --exclude=./site-packages --exclude=./dist-packages --exclude=./ensurepip --exclude=./idlelib \
    --exclude=./tkinter --exclude=./turtledemo --exclude=./turtle.py --exclude=./lib2to3 \
    --exclude=./pydoc_data --exclude=./test --exclude=./distutils --exclude='./config-3*' \
    --exclude=./dbm --exclude=./sqlite3 --exclude=./curses \
    --exclude='./lib-dynload/_dbm.*' --exclude='./lib-dynload/_gdbm.*' --exclude='./lib-dynload/_sqlite3.*' \
    --exclude='./lib-dynload/readline.*' --exclude='./lib-dynload/_curses*' --exclude='./lib-dynload/nis.*' \
    --exclude='./lib-dynload/_crypt.*' --exclude='./lib-dynload/_test*' --exclude='./lib-dynload/xx*' \
    --exclude='./lib-dynload/_ctypes_test.*' --exclude='./lib-dynload/audioop.*' \
    --exclude='./lib-dynload/ossaudiodev.*' --exclude='./lib-dynload/spwd.*' \
    --exclude='*/__pycache__/*.opt-?.pyc' . | tar -C "$out$stdlib" -xf -
[ -d "$out$dynload" ] || copy "$dynload"

copy /opt/venv /opt/gateway
# Trimmed from the venv: numpy's compilers/build helpers and C headers, type stubs.
rm -rf "$out"/opt/venv/lib/python3*/site-packages/numpy/f2py \
       "$out"/opt/venv/lib/python3*/site-packages/numpy/distutils \
       "$out"/opt/venv/lib/python3*/site-packages/numpy/_pyinstaller \
       "$out"/opt/venv/lib/python3*/site-packages/numpy/_core/include \
       "$out"/opt/venv/lib/python3*/site-packages/numpy/_core/lib \
       "$out"/opt/venv/lib/python3*/site-packages/numpy/random/lib
find "$out/opt/venv" -name '*.pyi' -delete
# Pillow's text rendering (ImageFont: FreeType, HarfBuzz, Brotli for WOFF2 fonts): the gateway
# decodes images and never draws text. Then every library bundled with a wheel (numpy.libs,
# pillow.libs, ...) that no remaining extension module loads, as ldd resolves them (about 3 MB).
rm -f "$out"/opt/venv/lib/python3*/site-packages/PIL/_imagingft.*.so
# ldd lists an extension's whole closure (a bundled library's own dependencies included); the
# bundled names carry a hash, so a base name identifies one library.
find "$out/opt/venv" \( -name '*.so' -o -name '*.so.*' \) ! -path '*.libs/*' | while read -r elf; do
  ldd "$elf" 2>/dev/null | awk '/=> \// { n = split($3, p, "/"); print p[n] }'
done | sort -u > /tmp/venv-libs
for lib in "$out"/opt/venv/lib/python3*/site-packages/*.libs/*; do
  grep -qxF "${lib##*/}" /tmp/venv-libs || rm -f "$lib"
done

sleep=$(command -v sleep)
copy_resolved "$sleep"

# Every shared object those load, as ldd resolves it (the dynamic loader included), plus
# libgcc_s, which glibc loads on demand to unwind a thread that calls pthread_exit.
{
  echo "$python"; echo "$sleep"
  find "$out" -name '*.so' -o -name '*.so.*' | sed "s|^$out||"
} | while read -r elf; do
  ldd "$elf" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'
done | sort -u > /tmp/libs
gcc_s=$(ldconfig -p | awk '/libgcc_s\.so\.1 .*x86-64|libgcc_s\.so\.1 .*AArch64|libgcc_s\.so\.1 \(libc6\)/ { print $NF; exit }')
[ -z "$gcc_s" ] || echo "$gcc_s" >> /tmp/libs
while read -r lib; do
  case $lib in "$out"*|/opt/*) continue ;; esac
  [ -e "$out$lib" ] || copy_resolved "$lib"
done < /tmp/libs

# Name resolution reads these (Kubernetes mounts /etc/hosts and /etc/resolv.conf itself). The
# loader's cache finds libraries outside its built-in paths (python:3.11-slim's /usr/local/lib).
mkdir -p "$out/etc" "$out/tmp"
[ ! -f /etc/ld.so.cache ] || cp /etc/ld.so.cache "$out/etc/"
printf 'hosts: files dns\n' > "$out/etc/nsswitch.conf"
chmod 1777 "$out/tmp"
