"""The model loader against a real local HTTP server: checksum first, safe archives, atomic."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from model_tools import loader

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def http_files():
    """A loopback HTTP server serving whatever bytes the test puts in the returned dict."""
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield files, base
    server.shutdown()
    server.server_close()


def _tar_of(version_dir, prefix: str = ".") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(version_dir, arcname=prefix)
    return buffer.getvalue()


def _tree(path):
    return sorted(
        (p.relative_to(path).as_posix(), p.read_bytes() if p.is_file() else None) for p in path.rglob("*")
    )


def _publish(http_files, name, body):
    files, base = http_files
    files[f"/{name}"] = body
    return f"{base}/{name}", hashlib.sha256(body).hexdigest()


def test_fetch_verifies_and_unpacks_the_version(http_files, converted, tmp_path):
    url, sha = _publish(http_files, "good.tar.gz", _tar_of(converted["uint8"]))
    dest = tmp_path / "models" / "tiny" / "1"
    assert loader.main(["fetch", "--url", url, "--sha256", sha, "--dest", str(dest)]) == 0
    assert _tree(dest) == _tree(converted["uint8"])
    assert sorted(p.name for p in dest.parent.iterdir()) == [".1.model-loader-source", "1"]
    # A second run with the same source does no work and keeps the files.
    assert loader.main(["fetch", "--url", url, "--sha256", sha, "--dest", str(dest)]) == 0
    assert _tree(dest) == _tree(converted["uint8"])


def test_archive_with_a_top_level_version_folder_is_accepted(http_files, converted, tmp_path):
    url, sha = _publish(http_files, "nested.tar.gz", _tar_of(converted["uint8"], prefix="1"))
    dest = tmp_path / "m" / "7"
    assert loader.main(["fetch", "--url", url, "--sha256", sha, "--dest", str(dest)]) == 0
    assert (dest / "saved_model.pb").read_bytes() == (converted["uint8"] / "saved_model.pb").read_bytes()


def test_wrong_checksum_leaves_destination_untouched(http_files, converted, tmp_path, capsys):
    url, sha = _publish(http_files, "v2.tar.gz", _tar_of(converted["float32"]))
    dest = tmp_path / "m" / "1"
    dest.mkdir(parents=True)
    (dest / "saved_model.pb").write_bytes(b"previous version")
    wrong = "0" * 64
    assert loader.main(["fetch", "--url", url, "--sha256", wrong, "--dest", str(dest)]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    assert _tree(dest) == [("saved_model.pb", b"previous version")]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["1"]  # no temp leftovers


def _evil_archive(kind: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:

        def add(info, data=b""):
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add(tarfile.TarInfo("saved_model.pb"), b"pb")
        info = tarfile.TarInfo(
            {
                "dotdot": "../escaped",
                "absolute": "/tmp/escaped-abs",
                "nested-dotdot": "variables/../../escaped",
            }.get(kind, "entry")
        )
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "../../outside"
        elif kind == "absolute-symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hardlink":
            info.type, info.linkname = tarfile.LNKTYPE, "../outside"
        elif kind == "device":
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        elif kind == "fifo":
            info.type = tarfile.FIFOTYPE
        add(info, b"x" if info.type == tarfile.REGTYPE else b"")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "kind",
    ["dotdot", "absolute", "nested-dotdot", "symlink", "absolute-symlink", "hardlink", "device", "fifo"],
)
def test_archives_escaping_the_destination_are_refused(kind, http_files, tmp_path, capsys):
    url, sha = _publish(http_files, f"evil-{kind}.tar.gz", _evil_archive(kind))
    root = tmp_path / "volume"
    dest = root / "models" / "m" / "1"
    assert loader.main(["fetch", "--url", url, "--sha256", sha, "--dest", str(dest)]) == 1
    assert "refusing archive" in capsys.readouterr().err
    assert not dest.exists()
    assert [p.name for p in tmp_path.rglob("*") if "escaped" in p.name or "outside" in p.name] == []
    assert sorted(p.name for p in dest.parent.iterdir()) == []


def test_size_cap_and_http_errors(http_files, tmp_path, capsys):
    url, sha = _publish(http_files, "big.tar.gz", b"x" * 4096)
    dest = tmp_path / "m" / "1"
    assert (
        loader.main(["fetch", "--url", url, "--sha256", sha, "--dest", str(dest), "--max-bytes", "1000"]) == 1
    )
    assert "over the 1000-byte limit" in capsys.readouterr().err
    _, base = http_files
    assert (
        loader.main(
            [
                "fetch",
                "--url",
                f"{base}/missing.tar.gz",
                "--sha256",
                sha,
                "--dest",
                str(dest),
                "--retries",
                "1",
            ]
        )
        == 1
    )
    assert "HTTP 404" in capsys.readouterr().err
    assert loader.main(["fetch", "--url", "file:///etc/passwd", "--sha256", sha, "--dest", str(dest)]) == 1
    assert "only http:// and https://" in capsys.readouterr().err
    assert not dest.exists()


def test_not_a_savedmodel_is_refused(http_files, tmp_path, capsys):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("README")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    url, sha = _publish(http_files, "readme.tar.gz", buffer.getvalue())
    dest = tmp_path / "m" / "1"
    assert loader.main(["fetch", "--url", url, "--sha256", sha, "--dest", str(dest)]) == 1
    assert "no saved_model.pb" in capsys.readouterr().err
    assert not dest.exists()


def test_copy_replaces_atomically(converted, tmp_path):
    dest = tmp_path / "models" / "tiny" / "1"
    dest.mkdir(parents=True)
    (dest / "stale").write_text("old")
    assert loader.main(["copy", "--src", str(converted["float32"]), "--dest", str(dest)]) == 0
    assert _tree(dest) == _tree(converted["float32"])
    assert loader.main(["copy", "--src", str(tmp_path / "nothing"), "--dest", str(dest)]) == 1
    assert _tree(dest) == _tree(converted["float32"])


def test_model_image_refuses_to_serve_its_version_under_another_number(
    converted, tmp_path, capsys, monkeypatch
):
    # A model image built for version 1 (MODEL_DEST) asked for version 2: the chart's version
    # bump with the image tag left pinned. Nothing is copied, the message names both versions.
    monkeypatch.setenv("MODEL_DEST", "/models/tiny/1")
    dest = tmp_path / "models" / "tiny" / "2"
    assert loader.main(["copy", "--src", str(converted["float32"]), "--dest", str(dest)]) == 1
    err = capsys.readouterr().err
    assert "holds tiny version 1" in err and "version 2 was asked for" in err
    assert not dest.exists()
    same = tmp_path / "models" / "tiny" / "1"
    assert loader.main(["copy", "--src", str(converted["float32"]), "--dest", str(same)]) == 0
    assert _tree(same) == _tree(converted["float32"])


def test_loader_runs_without_tensorflow_or_numpy():
    code = (
        "import sys, model_tools.loader; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'numpy', 'keras')]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    help_text = subprocess.run(
        [sys.executable, "-m", "model_tools.loader", "--help"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "fetch" in help_text and "copy" in help_text
