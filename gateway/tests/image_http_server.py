"""A real HTTP server for URL-fetching tests: sample photos and the ways a URL can misbehave.

Routes:
  /img/<name>            a file from samples/images (<class>.jpg), or <class>.png converted from it
  /as-text/<name>        the same JPEG with Content-Type text/plain (sniffing must accept it)
  /html-as-jpeg          an HTML page labelled image/jpeg (sniffing must refuse it)
  /truncated.jpg         the first half of a JPEG
  /bomb.png              a 12000x12000 1-bit PNG (144 Mpx in a few KB)
  /big                   2 MiB of JPEG-prefixed bytes with Content-Length
  /big-chunked           the same without Content-Length (chunked)
  /redirect?to=URL       302 to URL
  /chain/<n>             n redirects, then /img/hat.jpg
  /slow                  a JPEG header, then one byte every 0.3 s for up to 15 s
  /stall                 headers, then silence for 15 s
  /status/<code>         that status with a short body
"""

from __future__ import annotations

import http.server
import io
import pathlib
import socket
import sys
import threading
import time
import urllib.parse

from PIL import Image


def _bomb_png() -> bytes:
    out = io.BytesIO()
    Image.new("1", (12000, 12000)).save(out, format="PNG")
    return out.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(
        self, status: int, body: bytes, content_type: str = "application/octet-stream", length: bool = True
    ):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        if length:
            self.wfile.write(body)
        else:
            for start in range(0, len(body), 65536):
                chunk = body[start : start + 65536]
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

    def _redirect(self, location: str):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    def do_GET(self):  # noqa: C901 - one branch per route is the clearest form here
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query)
        self.server.hits[path] = self.server.hits.get(path, 0) + 1
        files = self.server.files
        if path.startswith("/img/") and path[5:] in files:
            name = path[5:]
            self._send(200, files[name], "image/png" if name.endswith(".png") else "image/jpeg")
        elif path.startswith("/as-text/") and path[9:] in files:
            self._send(200, files[path[9:]], "text/plain")
        elif path == "/html-as-jpeg":
            self._send(200, b"<!doctype html><html><body>not an image</body></html>", "image/jpeg")
        elif path == "/truncated.jpg":
            data = files["hat.jpg"]
            self._send(200, data[: len(data) // 2], "image/jpeg")
        elif path == "/bomb.png":
            self._send(200, self.server.bomb, "image/png")
        elif path in ("/big", "/big-chunked"):
            self._send(200, b"\xff\xd8\xff" + b"\0" * (2 * 1024 * 1024), "image/jpeg", length=path == "/big")
        elif path == "/redirect":
            self._redirect(query.get("to", ["/img/hat.jpg"])[0])
        elif path.startswith("/chain/"):
            left = int(path.rsplit("/", 1)[1])
            self._redirect(f"/chain/{left - 1}" if left > 1 else "/img/hat.jpg")
        elif path == "/slow":
            self._trickle()
        elif path == "/stall":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.flush()
            time.sleep(15)
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"status page", "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    def _trickle(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            self.wfile.write(b"\xff\xd8\xff\xe0")
            for _ in range(50):
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass  # the gateway hung up, as it should


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # The gateway hanging up on an oversized or slow body is the expected outcome.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class ImageHTTPServer:
    def __init__(self, samples: pathlib.Path, host: str = "127.0.0.1"):
        server_class = _Server6 if ":" in host else _Server
        self.httpd = server_class((host, 0), _Handler)
        self.httpd.hits = {}
        files = {p.name: p.read_bytes() for p in samples.glob("*.jpg")}
        for name, data in list(files.items()):
            out = io.BytesIO()
            Image.open(io.BytesIO(data)).save(out, format="PNG")
            files[name[:-4] + ".png"] = out.getvalue()
        self.httpd.files = files
        self.httpd.bomb = _bomb_png()
        self.host = host
        self.port = self.httpd.server_address[1]
        bracketed = f"[{host}]" if ":" in host else host
        self.base = f"http://{bracketed}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def hits(self) -> dict[str, int]:
        return self.httpd.hits

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> ImageHTTPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
