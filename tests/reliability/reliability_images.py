"""A real loopback HTTP server for URL inputs: a small photo, slow and stalling answers, and
redirects; every request is counted per path, so a test can prove a URL was never fetched.

Routes:
  /small.jpg             a small JPEG (cheap to fetch and decode: the soak's URL input)
  /slow/<seconds>        the small JPEG after <seconds> (requests held in flight)
  /stall                 status line and headers (Content-Length 50000), then silence (slowloris)
  /chain/<n>             n redirects, then /small.jpg
  /to?location=URL       302 to URL (a redirect to somewhere the gateway must not go)
  /padded/<bytes>        the small JPEG padded with zeros to <bytes> (a valid JPEG: decoders stop
                         at its end marker), with a Content-Length; `?unsized` sends no length
                         and closes the connection after the body instead
"""

from __future__ import annotations

import http.server
import io
import threading
import time
import urllib.parse

from PIL import Image


def small_jpeg(size: int = 48, seed: int = 0) -> bytes:
    """A photo-like JPEG: a smooth gradient with a little texture, `size` px square."""
    image = Image.linear_gradient("L").resize((size, size)).convert("RGB")
    image = Image.merge(
        "RGB", (image.getchannel(0), image.getchannel(1).rotate(90 + seed), image.getchannel(2).rotate(180))
    )
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes, content_type: str = "image/jpeg", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        with self.server.lock:
            self.server.hits[path] = self.server.hits.get(path, 0) + 1
        if path == "/small.jpg":
            self._send(200, self.server.jpeg)
        elif path.startswith("/slow/"):
            if self.server.stopping.wait(float(path.rsplit("/", 1)[1])):
                return
            self._send(200, self.server.jpeg)
        elif path == "/stall":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "50000")
            self.end_headers()
            self.wfile.flush()
            self.server.stopping.wait(60)  # then nothing: the gateway's deadline must end it
            self.close_connection = True
        elif path.startswith("/chain/"):
            left = int(path.rsplit("/", 1)[1])
            target = f"/chain/{left - 1}" if left > 1 else "/small.jpg"
            self._send(302, b"", "text/plain", {"Location": target})
        elif path.startswith("/padded/"):
            body = self.server.jpeg.ljust(int(path.rsplit("/", 1)[1]), b"\0")
            if url.query != "unsized":
                self._send(200, body)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
        elif path == "/to":
            location = urllib.parse.parse_qs(url.query)["location"][0]
            self._send(302, b"", "text/plain", {"Location": location})
        else:
            self._send(404, b"not found", "text/plain")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class ImageServer:
    """Serve on `host` (a loopback address); `hits` counts requests per path."""

    def __init__(self, host: str = "127.0.0.1"):
        self.httpd = _Server((host, 0), _Handler)
        self.httpd.hits = {}
        self.httpd.lock = threading.Lock()
        self.httpd.stopping = threading.Event()
        self.httpd.jpeg = small_jpeg()
        self.host = host
        self.port = self.httpd.server_address[1]
        self.base = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    @property
    def hits(self) -> dict[str, int]:
        with self.httpd.lock:
            return dict(self.httpd.hits)

    def total_hits(self) -> int:
        return sum(self.hits.values())

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        time.sleep(0)  # let handler threads see `stopping`
