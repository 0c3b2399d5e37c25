"""A minimal authoritative DNS server on loopback UDP for one name, so a gRPC `dns:` target can
resolve to several addresses in a test (`dns://127.0.0.1:<port>/<name>:<grpc port>`; gRPC's
c-ares resolver sends its queries to the server named in the target's authority).

Answers A queries for `name` with every configured IPv4 address, AAAA queries with no records,
everything else with NXDOMAIN. Counts the A queries it answered."""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading


class TinyDNSServer:
    def __init__(self, name: str, addresses: list[str], host: str = "127.0.0.1"):
        self.name = name.rstrip(".").lower()
        self.addresses = [ipaddress.IPv4Address(a) for a in addresses]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.a_queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> TinyDNSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, client = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self.answer(query)
            if reply:
                self.sock.sendto(reply, client)

    def answer(self, query: bytes) -> bytes | None:
        if len(query) < 12:
            return None
        (ident, _flags, qdcount) = struct.unpack("!HHH", query[:6])
        if qdcount != 1:
            return None
        labels, offset = [], 12
        while offset < len(query) and query[offset] != 0:
            length = query[offset]
            labels.append(query[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        offset += 1
        qtype, _qclass = struct.unpack("!HH", query[offset : offset + 4])
        question = query[12 : offset + 4]
        name = ".".join(labels).lower()
        if name != self.name:
            return struct.pack("!HHHHHH", ident, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
        answers = b""
        count = 0
        if qtype == 1:  # A
            self.a_queries += 1
            for address in self.addresses:
                # name pointer to the question (0xc00c), type A, class IN, TTL 1 s, 4 bytes
                answers += struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + address.packed
                count += 1
        return struct.pack("!HHHHHH", ident, 0x8580, 1, count, 0, 0) + question + answers
