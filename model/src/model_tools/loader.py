"""Model loader for init containers: put one SavedModel version at ``--dest``, atomically.

    python3 -m model_tools.loader fetch --url URL --sha256 HEX --dest /models/<name>/<version>
    python3 -m model_tools.loader copy --src /model --dest /models/<name>/<version>

Standard library only: it runs in the model-loader image, which has no TensorFlow. ``fetch``
streams the archive (a .tar.gz of one version directory's *contents*) to a temporary file,
checks its size cap and SHA-256 before anything is unpacked, validates every member (no
absolute paths, no ``..``, no links leaving the destination, no devices or FIFOs), unpacks into
a temporary directory beside ``--dest`` and renames it into place. A failure at any step leaves
``--dest`` as it was.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import posixpath
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

CHUNK = 1 << 20
# "<parent>/.<version>.model-loader-source" records what was installed, so a re-run (pod
# restart with the same emptyDir) skips the download. It sits beside the version directory, not
# in it: the version directory holds exactly the archive's contents, and TF Serving ignores
# non-numeric names.


class LoaderError(Exception):
    pass


def download(url: str, target: pathlib.Path, *, max_bytes: int, timeout: float) -> str:
    """Stream ``url`` into ``target``; return the SHA-256 hex digest of what was written."""
    if not url.startswith(("https://", "http://")):
        raise LoaderError(f"refusing URL {url!r}: only http:// and https:// are supported")
    request = urllib.request.Request(url, headers={"User-Agent": "keras-serving-model-loader"})
    digest = hashlib.sha256()
    written = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(target, "wb") as out:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise LoaderError(f"archive is {declared} bytes, over the {max_bytes}-byte limit")
            while chunk := response.read(CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise LoaderError(f"archive exceeds the {max_bytes}-byte limit")
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise LoaderError(f"download failed: HTTP {exc.code} {exc.reason} for {url}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise LoaderError(f"download failed for {url}: {getattr(exc, 'reason', exc)}") from exc
    return digest.hexdigest()


def _inside(path: str) -> bool:
    """True if the archive-relative POSIX ``path`` stays inside the extraction root."""
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return False
    normal = posixpath.normpath(path)
    return normal != ".." and not normal.startswith("../")


def check_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for member in members:
        name = member.name
        if not _inside(name):
            raise LoaderError(f"refusing archive: member {name!r} escapes the destination")
        if member.issym():
            target = posixpath.join(posixpath.dirname(name), member.linkname)
            if member.linkname.startswith("/") or not _inside(target):
                raise LoaderError(
                    f"refusing archive: symlink {name!r} -> {member.linkname!r} "
                    "points outside the destination"
                )
        elif member.islnk():
            if not _inside(member.linkname):
                raise LoaderError(
                    f"refusing archive: hard link {name!r} -> {member.linkname!r} "
                    "points outside the destination"
                )
        elif not (member.isfile() or member.isdir()):
            raise LoaderError(f"refusing archive: {name!r} is a device, FIFO or other special file")
    return members


def find_saved_model(root: pathlib.Path) -> pathlib.Path:
    """The version directory inside an unpacked tree: the root itself, or its only subdirectory
    (archives made with ``tar -czf m.tar.gz 1/`` instead of ``-C 1 .`` are accepted too)."""
    if (root / "saved_model.pb").is_file():
        return root
    children = [p for p in root.iterdir()]
    if len(children) == 1 and children[0].is_dir() and (children[0] / "saved_model.pb").is_file():
        return children[0]
    raise LoaderError(
        "no saved_model.pb at the top of the model (expected the contents of one version directory)"
    )


def _marker(dest: pathlib.Path) -> pathlib.Path:
    return dest.parent / f".{dest.name}.model-loader-source"


def install(version_dir: pathlib.Path, staging: pathlib.Path, dest: pathlib.Path, source: str):
    """Move ``version_dir`` (inside ``staging``, beside ``dest``) to ``dest`` by rename."""
    os.chmod(version_dir, 0o755)
    _marker(dest).unlink(missing_ok=True)
    if dest.exists():
        dest.rename(staging / "previous")  # rename cannot replace a non-empty directory
    version_dir.rename(dest)
    _marker(dest).write_text(source + "\n")


def already_installed(dest: pathlib.Path, source: str) -> bool:
    marker = _marker(dest)
    return (dest / "saved_model.pb").is_file() and marker.is_file() and marker.read_text().strip() == source


def fetch(
    url: str, sha256: str, dest: pathlib.Path, *, max_bytes: int, timeout: float, retries: int = 3
) -> str:
    sha256 = sha256.strip().lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise LoaderError("--sha256 must be 64 hexadecimal digits")
    source = f"url={url} sha256={sha256}"
    if already_installed(dest, source):
        return f"{dest} already holds {url} (sha256 {sha256}); nothing to do"
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}.loading-", dir=dest.parent))
    try:
        archive = staging / "archive"
        for attempt in range(1, retries + 1):
            try:
                actual = download(url, archive, max_bytes=max_bytes, timeout=timeout)
                break
            except LoaderError as exc:
                if attempt == retries or "limit" in str(exc) or "refusing" in str(exc):
                    raise
                print(f"model-loader: {exc}; retrying ({attempt}/{retries})", file=sys.stderr)
                time.sleep(min(2**attempt, 10))
        if actual != sha256:
            raise LoaderError(
                f"checksum mismatch: expected sha256 {sha256}, downloaded {actual}; {dest} left untouched"
            )
        unpacked = staging / "unpacked"
        unpacked.mkdir()
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = check_members(tar)
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: a second line of defence
                    tar.extractall(unpacked, members=members, filter="data")
                else:
                    tar.extractall(unpacked, members=members)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise LoaderError(f"cannot unpack the archive: {exc}") from exc
        install(find_saved_model(unpacked), staging, dest, source)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return f"installed {url} (sha256 {sha256}) at {dest}"


def check_image_version(built_for: str | None, dest: pathlib.Path) -> None:
    """A model image knows the version it holds (MODEL_DEST=/models/<name>/<version>, set when it
    was built). Copying it in under another version would serve its bytes under a number they are
    not: refuse, naming both (e.g. a version bump with the image tag or digest left pinned)."""
    if not built_for:
        return
    built = pathlib.PurePosixPath(built_for)
    if (built.parent.name, built.name) != (dest.parent.name, dest.name):
        raise LoaderError(
            f"this model image holds {built.parent.name} version {built.name}, but {dest.parent.name} "
            f"version {dest.name} was asked for: build and push a model image of version {dest.name}, "
            f"or point global.model.source.image at it (its tag or digest still names version {built.name})"
        )


def copy(src: pathlib.Path, dest: pathlib.Path, built_for: str | None = None) -> str:
    check_image_version(built_for, dest)
    if not (src / "saved_model.pb").is_file():
        raise LoaderError(f"{src}: no saved_model.pb (expected one SavedModel version directory)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}.loading-", dir=dest.parent))
    try:
        shutil.copytree(src, staging / "copy", symlinks=False)
        install(staging / "copy", staging, dest, f"copy of {src}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return f"copied {src} to {dest}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model-loader", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="download a .tar.gz, verify its sha256, unpack atomically")
    f.add_argument("--url", required=True)
    f.add_argument("--sha256", required=True, help="expected SHA-256 of the archive (hex)")
    f.add_argument("--dest", required=True, help="version directory to create, e.g. /models/m/1")
    f.add_argument("--max-bytes", type=int, default=4 << 30, help="size cap (default 4 GiB)")
    f.add_argument("--timeout", type=float, default=30.0, help="socket timeout in seconds")
    f.add_argument("--retries", type=int, default=3, help="attempts on network errors")
    c = sub.add_parser("copy", help="copy a SavedModel version directory atomically")
    c.add_argument("--src", default="/model")
    c.add_argument(
        "--dest",
        default=os.environ.get("MODEL_DEST"),
        required="MODEL_DEST" not in os.environ,
        help="version directory to create (default: $MODEL_DEST, set by model images)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            message = fetch(
                args.url,
                args.sha256,
                pathlib.Path(args.dest),
                max_bytes=args.max_bytes,
                timeout=args.timeout,
                retries=args.retries,
            )
        else:
            message = copy(pathlib.Path(args.src), pathlib.Path(args.dest), os.environ.get("MODEL_DEST"))
    except LoaderError as exc:
        print(f"model-loader: error: {exc}", file=sys.stderr)
        return 1
    print(f"model-loader: {message}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
