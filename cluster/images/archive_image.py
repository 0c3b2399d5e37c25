"""Pack files into a one-layer container image archive (the `docker save` layout), no engine.

The test cluster's own images (the pause image, a busybox for the volume provisioner's helper
pods) hold one static binary or two. They need no Dockerfile and no Docker engine: this writes
the archive that `ctr images import` (and `docker load`) read, with reproducible bytes (sorted
entries, zero mtimes, root owner), so the same inputs give the same image ID.

    python3 archive_image.py --tag keras-serving.local/pause:3.10 --out pause.tar \
        --file /tmp/pause:/pause:755 --entrypoint /pause --user 65535:65535
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import pathlib
import sys
import tarfile


def _layer(files: list[tuple[pathlib.Path, str, int]], links: list[tuple[str, str]]) -> bytes:
    """A tar of the files at their image paths (parent directories included), sorted."""
    entries: dict[str, tarfile.TarInfo] = {}
    payload: dict[str, bytes] = {}

    def add_dirs(path: str) -> None:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            name = "/".join(parts[:i])
            if name not in entries:
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                entries[name] = info

    for source, dest, mode in files:
        add_dirs(dest)
        data = source.read_bytes()
        info = tarfile.TarInfo(dest.strip("/"))
        info.size, info.mode = len(data), mode
        entries[info.name], payload[info.name] = info, data
    for target, dest in links:
        add_dirs(dest)
        info = tarfile.TarInfo(dest.strip("/"))
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        entries[info.name] = info
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            info = entries[name]
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            tar.addfile(info, io.BytesIO(payload[name]) if name in payload else None)
    return buf.getvalue()


def build(tag: str, files, links, entrypoint: list[str], cmd: list[str], user: str, env: list[str]) -> bytes:
    """The archive's bytes: manifest.json, the config and one layer."""
    layer = _layer(files, links)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": entrypoint,
            "Cmd": cmd or None,
            "User": user,
            "Env": env or ["PATH=/usr/local/bin:/usr/bin:/bin"],
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "cluster/images/archive_image.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id.split(":")[1] + "/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((config_name, config_bytes), (layer_name, layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _file_spec(text: str) -> tuple[pathlib.Path, str, int]:
    source, dest, *mode = text.split(":")
    path = pathlib.Path(source)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{source}: no such file")
    return path, dest, int(mode[0], 8) if mode else 0o644


def _link_spec(text: str) -> tuple[str, str]:
    target, _, dest = text.partition(":")
    if not dest:
        raise argparse.ArgumentTypeError(f"{text}: expected TARGET:PATH")
    return target, dest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tag", required=True, help="full image reference, e.g. keras-serving.local/pause:3.10"
    )
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--file", action="append", type=_file_spec, default=[], metavar="SRC:DEST[:MODE]")
    parser.add_argument("--link", action="append", type=_link_spec, default=[], metavar="TARGET:PATH")
    parser.add_argument("--entrypoint", action="append", default=[])
    parser.add_argument("--cmd", action="append", default=[])
    parser.add_argument("--user", default="")
    parser.add_argument("--env", action="append", default=[])
    args = parser.parse_args(argv)
    data = build(args.tag, args.file, args.link, args.entrypoint, args.cmd, args.user, args.env)
    partial = args.out.with_name(args.out.name + ".partial")
    partial.write_bytes(data)
    partial.replace(args.out)  # never a half-written archive under the final name
    return 0


if __name__ == "__main__":
    sys.exit(main())
