"""Download an image from a URL a stranger sent, without becoming their SSRF proxy.

Library choice (evaluated 2026-11, see README "URL fetching"):
- requests-hardened 1.3: resolves, checks and connects in one place, but its only exception is a
  boolean "allow loopback"; there is no CIDR allowlist, so FETCH_ALLOWED_NETWORKS (and tests
  against loopback servers) cannot be expressed.
- safehttpx 0.1.7: async-only (httpx.AsyncClient) and validates names through Google's public
  DNS (8.8.8.8), which in a cluster both leaks lookups and cannot see in-cluster names; no
  redirect re-check, no byte cap.
- ssrfguard 0.4.1 (chosen): resolves once, validates every answer against an IANA-derived table
  (private, loopback, link-local incl. 169.254.169.254, multicast, reserved, CGNAT, and the IPv6
  equivalents; IPv4-mapped / NAT64 / 6to4 / Teredo addresses are decoded and judged by the IPv4
  address inside), then connects to the validated address itself (urllib3 `_new_conn` seam, so
  there is no second DNS lookup to rebind and TLS still checks the hostname). Redirects go
  through the same seam and are counted by the policy. No runtime dependencies of its own; it
  plugs into requests, which we already use.

What this module adds on top: only http/https and the configured ports; an explicit allowlist
(`FETCH_ALLOWED_NETWORKS`) that beats the deny table; connect and read timeouts plus a total
deadline checked while streaming; a byte cap enforced while streaming (Content-Length is only
a hint); environment proxies ignored (a proxy would resolve the target itself).
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import requests
from ssrfguard import BlockedAddressError, BlockedURLError, Policy, TooManyRedirectsError
from ssrfguard import SSRFGuardError
from ssrfguard.requests import Session as GuardedSession

from gateway.errors import GatewayError
from gateway.imaging import sniff_format
from gateway.settings import Settings

_CHUNK = 64 * 1024
_SNIFF_BYTES = 12
_USER_AGENT = "keras-serving-gateway/0.1 (+image fetch)"


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float
    total_timeout: float
    max_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "FetchLimits":
        return cls(
            connect_timeout=min(settings.fetch_connect_timeout_seconds, settings.fetch_timeout_seconds),
            total_timeout=settings.fetch_timeout_seconds,
            max_bytes=settings.fetch_max_bytes,
        )


class _Watchdog:
    """Shuts down every socket a fetch opened once the total deadline passes, so no read (headers
    dripped byte by byte, a body that trickles) can outlive it; per-read timeouts alone cannot."""

    def __init__(self, seconds: float):
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


def _watch_new_sockets(session: GuardedSession, watchdog: _Watchdog) -> None:
    """Wrap the session's pinned connection classes (ssrfguard's own, still doing every check)
    so each socket they open is handed to `watchdog`. Uses the pool-class table hook that
    ssrfguard itself (and urllib3.contrib.socks) uses."""
    for adapter in session.adapters.values():  # get_adapter() would run the URL check
        manager = adapter.poolmanager
        table = {}
        for scheme, pool_cls in manager.pool_classes_by_scheme.items():
            base_conn = pool_cls.ConnectionCls

            class WatchedConnection(base_conn):  # type: ignore[misc, valid-type]
                def _new_conn(self):
                    sock = super()._new_conn()
                    watchdog.watch(sock)
                    return sock

            table[scheme] = type(pool_cls.__name__, (pool_cls,), {"ConnectionCls": WatchedConnection})
        manager.pool_classes_by_scheme = table


def build_policy(settings: Settings) -> Policy:
    return Policy(
        allowed_schemes=frozenset({"http", "https"}),
        allowed_networks=settings.fetch_allowed_networks,
        allowed_ports=settings.fetch_allowed_ports,
        max_redirects=settings.fetch_max_redirects,
    )


class ImageFetcher:
    """One per app. Sessions are per call: a pooled keep-alive socket to a host that has since
    started resolving elsewhere would skip the address check, and image URLs rarely repeat."""

    def __init__(self, settings: Settings):
        self.policy = build_policy(settings)
        self.limits = FetchLimits.from_settings(settings)

    def fetch(self, url: str) -> bytes:
        if not isinstance(url, str) or not url:
            raise GatewayError(400, "invalid_url", "url must be a non-empty string")
        deadline = time.monotonic() + self.limits.total_timeout
        watchdog = _Watchdog(self.limits.total_timeout)
        try:
            with GuardedSession(policy=self.policy, max_retries=0) as session, watchdog:
                session.trust_env = False  # ignore HTTP(S)_PROXY, .netrc: pinning needs a direct socket
                _watch_new_sockets(session, watchdog)
                response = session.get(
                    url,
                    stream=True,
                    timeout=(self.limits.connect_timeout, self.limits.total_timeout),
                    # identity: images are compressed already, and gzip would only add a decompression step
                    headers={"User-Agent": _USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"},
                )
                with response:
                    return self._read_body(response, watchdog)
        except GatewayError:
            raise
        except BlockedURLError as error:
            if error.reason.startswith("scheme"):
                raise GatewayError(400, "invalid_url", f"only http and https URLs are fetched: {error.reason}") from None
            raise GatewayError(403, "url_forbidden", f"URL refused: {error.reason}") from None
        except BlockedAddressError as error:
            raise GatewayError(
                403, "url_forbidden", f"URL refused: address {error.address} is not allowed ({error.reason})"
            ) from None
        except TooManyRedirectsError as error:
            raise GatewayError(
                502, "too_many_redirects", f"the URL redirected more than {error.limit} times"
            ) from None
        except SSRFGuardError as error:
            raise GatewayError(403, "url_forbidden", f"URL refused: {error}") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema, requests.exceptions.URLRequired) as error:
            raise GatewayError(400, "invalid_url", f"invalid URL: {error}") from None
        except requests.exceptions.RequestException as error:
            if watchdog.fired or time.monotonic() >= deadline or isinstance(error, requests.exceptions.Timeout):
                raise _timeout(self.limits.total_timeout) from None
            if not isinstance(error, requests.exceptions.ConnectionError):
                raise GatewayError(502, "fetch_failed", f"fetching the image failed: {_short(error)}") from None
            # requests wraps errors raised inside the connection seam; unwrap our policy's.
            guard = _find_cause(error, SSRFGuardError)
            if isinstance(guard, (BlockedAddressError, BlockedURLError)):
                reason = guard.reason
                raise GatewayError(403, "url_forbidden", f"URL refused: {reason}") from None
            raise GatewayError(502, "fetch_failed", f"could not connect to the image URL: {_short(error)}") from None

    def _read_body(self, response: requests.Response, watchdog: _Watchdog) -> bytes:
        if response.status_code != 200:
            raise GatewayError(
                502, "fetch_failed", f"the image URL answered HTTP {response.status_code}"
            )
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.limits.max_bytes:
            raise _too_large(self.limits.max_bytes)
        body = bytearray()
        sniffed = False
        for chunk in response.iter_content(_CHUNK):
            body += chunk
            if len(body) > self.limits.max_bytes:
                raise _too_large(self.limits.max_bytes)
            if not sniffed and len(body) >= _SNIFF_BYTES:
                sniff_format(bytes(body[:_SNIFF_BYTES]))  # stop early on HTML, JSON, video...
                sniffed = True
        if watchdog.fired:  # a body cut short by the watchdog may look complete (no length)
            raise _timeout(self.limits.total_timeout)
        return bytes(body)


def _timeout(seconds: float) -> GatewayError:
    return GatewayError(504, "fetch_timeout", f"fetching the image took longer than {seconds:g} s")


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, "image_too_large", f"the image at the URL is larger than {limit} bytes")


def _find_cause(error: BaseException, kind: type) -> BaseException | None:
    seen = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        stack.extend([current.__cause__, current.__context__])
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        stack.append(getattr(current, "reason", None))
    return None


def _short(error: BaseException) -> str:
    text = str(error)
    return text if len(text) <= 200 else text[:197] + "..."
