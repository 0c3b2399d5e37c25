"""A raw HTTP/1.1 image server that keeps connections alive, for the fetcher's connection-pool
tests (test_gateway_fetch_pool.py) and the request-head test of test_gateway_fetch.py."""

from __future__ import annotations

import ipaddress

from gateway.settings import Settings


class KeepAliveServer:
    """A raw HTTP/1.1 server answering every request with `body` on a kept-alive connection; it
    records connections and request heads. `close_silently`: close each connection after one
    answer without saying so (a server whose keep-alive timeout passed); `answer_once`: answer
    the first request of each connection, then never again (a stalled kept-alive connection)."""

    def __init__(self, body: bytes, close_silently: bool = False, answer_once: bool = False):
        import socket
        import threading

        self.body = body
        self.close_silently = close_silently
        self.answer_once = answer_once
        self.connections = 0
        self.closed_by_client = 0
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading

        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buffered, answered = b"", 0
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                self.closed_by_client += 1
                return
            buffered += data
            while b"\r\n\r\n" in buffered:
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                self.requests.append(head)
                if self.answer_once and answered:
                    continue
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n"
                    + f"Content-Length: {len(self.body)}\r\n\r\n".encode()
                    + self.body
                )
                answered += 1
                if self.close_silently:
                    conn.close()
                    return

    def settings(self, **overrides) -> Settings:
        """Fetch settings that permit this server (loopback, its port), with `overrides`."""
        settings = dict(
            fetch_allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
            fetch_allowed_ports=frozenset({self.port}),
        )
        settings.update(overrides)
        return Settings(**settings)

    def close(self):
        self._listener.close()
        for conn in self._open:
            conn.close()
