"""Socket lifetimes of image fetches (fetch.py): each fetch's total deadline, and the pool of
idle kept-alive connections.

One daemon thread per process (`REAPER`) does all the timed work: it shuts down the sockets of
a fetch whose deadline passed (`Watch`), and closes pooled connections that sat idle for
`POOL_IDLE_SECONDS` (`Pool`), whether or not another fetch ever asks for that host again. Both
are entries of one heap ordered by due time; an entry is due once, and `done` ones are dropped.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import socket
import threading
import time

# Idle kept-alive connections: per host (the default THREADS can all reuse one), in all, and how
# long one may sit unused (below common server keep-alive timeouts: nginx 75 s, S3 ~20 s).
POOL_PER_HOST = 8
POOL_TOTAL = 64
POOL_IDLE_SECONDS = 5.0

Key = tuple[str, str, int]  # scheme, host, port


class Watch:
    """The sockets one fetch opened and its total deadline. When the deadline passes the reaper
    shuts them down, so no read (headers dripped byte by byte, a body that trickles) can outlive
    it; per-read timeouts alone cannot."""

    __slots__ = ("deadline", "fired", "done", "_sockets", "_lock")

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.fired = False
        self.done = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if not self.fired:
                self._sockets.append(sock)
                return
        shutdown(sock)

    def fire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.fired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            shutdown(sock)

    def finish(self) -> None:
        with self._lock:
            self.done = True
            self._sockets = []


class _Sweep:
    """A pool's next idle-expiry check, due when its oldest idle connection expires."""

    __slots__ = ("deadline", "done", "_pool")

    def __init__(self, pool: Pool, deadline: float):
        self.deadline = deadline
        self.done = False
        self._pool = pool

    def fire(self) -> None:
        self._pool.sweep()


class _Reaper:
    """One daemon thread per process that fires the entries whose due time has passed (a timer
    thread per fetch cost ~0.1 ms of CPU per request, and a thread start each time)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Watch | _Sweep]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, entry: Watch | _Sweep) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="fetch-deadlines", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (entry.deadline, next(self._order), entry))
            if self._heap[0][2] is entry:  # sooner than what the thread sleeps until
                self._cond.notify()

    def _run(self) -> None:
        while True:
            expired = []
            with self._cond:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, entry = heapq.heappop(self._heap)
                    if not entry.done:
                        expired.append(entry)
                if not expired:
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            for entry in expired:  # outside the lock: a sweep may add its successor
                entry.fire()


REAPER = _Reaper()


def shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class Pool:
    """Idle kept-alive connections by (scheme, host, port), newest first out. Expired ones are
    closed by one pending sweep on the reaper (scheduled by the first `give` after an empty
    pool, rescheduled while idle connections remain), not only when their host is asked for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[Key, list[tuple[float, http.client.HTTPConnection]]] = {}
        self._count = 0
        self._sweep_pending = False

    def take(self, key: Key) -> http.client.HTTPConnection | None:
        stale = []
        with self._lock:
            idle = self._idle.get(key)
            conn = None
            now = time.monotonic()
            while idle:
                expires, candidate = idle.pop()
                self._count -= 1
                if expires > now:
                    conn = candidate
                    break
                stale.append(candidate)
            if idle is not None and not idle:
                del self._idle[key]
        for old in stale:
            old.close()
        return conn

    def give(self, key: Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < POOL_PER_HOST and self._count < POOL_TOTAL:
                expires = time.monotonic() + POOL_IDLE_SECONDS
                idle.append((expires, conn))
                self._count += 1
                schedule, self._sweep_pending = not self._sweep_pending, True
                if schedule:
                    REAPER.add(_Sweep(self, expires))
                return
            if not idle:
                del self._idle[key]
        conn.close()

    def sweep(self) -> None:
        """Close the idle connections that expired; schedule the next sweep if any remain."""
        stale = []
        with self._lock:
            now = time.monotonic()
            for key in list(self._idle):
                idle = self._idle[key]
                keep = [(expires, conn) for expires, conn in idle if expires > now]
                stale += [conn for expires, conn in idle if expires <= now]
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
            self._count -= len(stale)
            due = min((idle[0][0] for idle in self._idle.values()), default=None)
            self._sweep_pending = due is not None
            if due is not None:
                REAPER.add(_Sweep(self, due))
        for conn in stale:
            conn.close()

    def size(self) -> int:
        with self._lock:
            return self._count
