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
  through the same seam and are counted by the policy. No runtime dependencies of its own.

How it is used here: aiohttp's client on the gateway's event loop does the HTTP (its C parser,
TLS verified against the URL's host name with certifi's CA bundle), and every name it resolves
goes through `_CheckedResolver`: ssrfguard's `resolve` (one lookup, every answer checked, only
permitted answers returned; run in a worker thread because getaddrinfo blocks), so aiohttp
connects only to addresses the policy accepted and there is no second lookup to rebind. A URL with
a literal address never reaches a resolver in aiohttp, which is why `Policy.check_url` (scheme,
port, credentials, literal addresses) runs first for every URL and every redirect hop.
(ssrfguard's own async integration, an httpx AsyncClient, was measured at ~3 ms more CPU per
request than this: bench/README.)

What this module adds on top: only http/https and the configured ports; an explicit allowlist
(`FETCH_ALLOWED_NETWORKS`) that beats the deny table; redirects followed by hand, each hop
re-checked, at most FETCH_MAX_REDIRECTS; one `asyncio.timeout` over the whole fetch (connect,
headers dripped byte by byte, a trickling body, a redirect chain) plus a connect timeout; a byte
cap enforced while streaming (Content-Length is only a hint); no proxies (`trust_env` off; a proxy
would resolve the target itself), no automatic decompression.

Kept-alive connections: images usually come from a few hosts (a bucket, a CDN), and a new TCP
connection per fetch costs more CPU than reading a 25 KB body over a kept one (a TLS handshake far
more). aiohttp's pool keeps a connection after a complete response; it stays connected to the
address that was checked when it was opened, so reusing it sends nothing to an address the policy
has not accepted (a name that now resolves elsewhere is checked when a new connection is opened).
Idle ones are closed after POOL_IDLE_SECONDS.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import certifi
from aiohttp.abc import AbstractResolver, ResolveResult
from ssrfguard import BlockedAddressError, BlockedURLError, Policy, SSRFGuardError, Target, resolve
from yarl import URL

from gateway.errors import GatewayError
from gateway.imaging import sniff_format
from gateway.settings import Settings

POOL_TOTAL = 64  # open connections to image hosts, in use and idle
POOL_IDLE_SECONDS = 5.0
_CHUNK = 256 * 1024
_SNIFF_BYTES = 12
_USER_AGENT = "keras-serving-gateway/0.1 (+image fetch)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# What may stay unescaped in a request target (RFC 3986 pchar + "/" + "?" + "%"); anything
# else (spaces, non-ASCII) is percent-encoded as UTF-8, as browsers and requests do.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float
    total_timeout: float
    max_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        return cls(
            connect_timeout=min(settings.fetch_connect_timeout_seconds, settings.fetch_timeout_seconds),
            total_timeout=settings.fetch_timeout_seconds,
            max_bytes=settings.fetch_max_bytes,
        )


def build_policy(settings: Settings) -> Policy:
    return Policy(
        allowed_schemes=frozenset({"http", "https"}),
        allowed_networks=settings.fetch_allowed_networks,
        allowed_ports=settings.fetch_allowed_ports,
        max_redirects=settings.fetch_max_redirects,
    )


class _CheckedResolver(AbstractResolver):
    """aiohttp's resolver seam, answering only with addresses the policy permits."""

    def __init__(self, policy: Policy):
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        target = Target(scheme="http", host=host, port=port, host_as_written=host)
        addresses = await asyncio.to_thread(resolve, target, policy=self.policy)
        return [
            ResolveResult(
                hostname=host,
                host=str(address.ip),
                port=address.port,
                family=address.family,
                proto=socket.IPPROTO_TCP,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        pass


class ImageFetcher:
    """One per app and event loop: its session (and connection pool) is made on first use."""

    def __init__(self, settings: Settings):
        self.policy = build_policy(settings)
        self.limits = FetchLimits.from_settings(settings)
        self.tls = ssl.create_default_context(cafile=certifi.where())
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=_CheckedResolver(self.policy),
                ssl=self.tls,
                limit=POOL_TOTAL,
                limit_per_host=0,  # concurrency is bounded by the gateway, not by waiting here
                keepalive_timeout=POOL_IDLE_SECONDS,
                use_dns_cache=False,  # one checked lookup per new connection, as fetch.py
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.limits.connect_timeout),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def idle_connections(self) -> int:
        """Kept-alive connections waiting in the pool (for tests and metrics)."""
        if self._session is None:
            return 0
        connector = self._session.connector
        return sum(len(conns) for conns in connector._conns.values())  # noqa: SLF001

    async def fetch(self, url: str, reserve: Callable[[int], object] | None = None) -> bytes:
        """The image at `url`. `reserve(size)` is called with the size the image will take
        (its Content-Length, else FETCH_MAX_BYTES) before its body is read; it raises to refuse."""
        if not isinstance(url, str) or not url:
            raise GatewayError(400, "invalid_url", "url must be a non-empty string")
        try:
            async with asyncio.timeout(self.limits.total_timeout):
                return await self._follow(url, reserve)
        except GatewayError:
            raise
        except TimeoutError:
            raise _timeout(self.limits.total_timeout) from None
        except BlockedURLError as error:
            if error.reason.startswith("scheme"):
                raise GatewayError(
                    400, "invalid_url", f"only http and https URLs are fetched: {error.reason}"
                ) from None
            raise GatewayError(403, "url_forbidden", f"URL refused: {error.reason}") from None
        except BlockedAddressError as error:
            raise GatewayError(
                403, "url_forbidden", f"URL refused: address {error.address} is not allowed ({error.reason})"
            ) from None
        except SSRFGuardError as error:
            raise GatewayError(403, "url_forbidden", f"URL refused: {error}") from None
        except aiohttp.ClientConnectorDNSError as error:
            raise GatewayError(
                502, "fetch_failed", f"the image URL's host does not resolve: {_short(error.os_error)}"
            ) from None
        except (aiohttp.ClientConnectorSSLError, aiohttp.ClientConnectorCertificateError) as error:
            raise GatewayError(
                502, "fetch_failed", f"TLS with the image URL's host failed: {_short(error)}"
            ) from None
        except aiohttp.ClientConnectorError as error:
            raise GatewayError(
                502, "fetch_failed", f"could not connect to the image URL: {_short(error.os_error)}"
            ) from None
        except (
            aiohttp.ClientPayloadError,
            aiohttp.ClientResponseError,
            aiohttp.ServerDisconnectedError,
        ) as error:
            raise GatewayError(
                502, "fetch_failed", f"the image URL answered malformed HTTP: {_short(error)}"
            ) from None
        except (aiohttp.ClientError, OSError) as error:
            raise GatewayError(
                502, "fetch_failed", f"could not fetch the image URL: {_short(error)}"
            ) from None
        except ValueError as error:  # urljoin/yarl on a URL the policy let through
            raise GatewayError(400, "invalid_url", f"invalid URL: {_short(error)}") from None

    async def _follow(self, url: str, reserve: Callable[[int], object] | None) -> bytes:
        session = self._client()
        for _hop in range(self.policy.max_redirects + 1):
            target = self.policy.check_url(url)  # scheme, port, userinfo, literal addresses
            request_url = URL(f"{target.scheme}://{_host_header(target)}{_request_target(url)}", encoded=True)
            async with session.get(
                request_url,
                headers={"User-Agent": _USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"},
                allow_redirects=False,
            ) as response:
                if response.status not in _REDIRECTS:
                    return await self._read_body(response, reserve)
                location = response.headers.get("Location")
                if not location:
                    raise GatewayError(
                        502,
                        "fetch_failed",
                        f"the image URL answered HTTP {response.status} without a Location",
                    )
                url = urllib.parse.urljoin(url, location.strip())
        raise GatewayError(
            502, "too_many_redirects", f"the URL redirected more than {self.policy.max_redirects} times"
        )

    async def _read_body(
        self, response: aiohttp.ClientResponse, reserve: Callable[[int], object] | None
    ) -> bytes:
        if response.status != 200:
            raise GatewayError(502, "fetch_failed", f"the image URL answered HTTP {response.status}")
        if response.content_length is not None and response.content_length > self.limits.max_bytes:
            raise _too_large(self.limits.max_bytes)
        if reserve is not None:
            reserve(self.limits.max_bytes if response.content_length is None else response.content_length)
        body = bytearray()
        sniffed = False
        async for chunk in response.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > self.limits.max_bytes:
                raise _too_large(self.limits.max_bytes)
            if not sniffed and len(body) >= _SNIFF_BYTES:
                sniff_format(bytes(body[:_SNIFF_BYTES]))  # stop early on HTML, JSON, video...
                sniffed = True
        return bytes(body)


def _request_target(url: str) -> str:
    """Path and query of `url` as an origin-form request target, percent-encoded."""
    split = urllib.parse.urlsplit(url)
    path = urllib.parse.quote(split.path or "/", safe=_PATH_SAFE)
    if split.query:
        path += "?" + urllib.parse.quote(split.query, safe=_QUERY_SAFE)
    return path


def _host_header(target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == _DEFAULT_PORTS[target.scheme] else f"{host}:{target.port}"


def _timeout(seconds: float) -> GatewayError:
    return GatewayError(504, "fetch_timeout", f"fetching the image took longer than {seconds:g} s")


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, "image_too_large", f"the image at the URL is larger than {limit} bytes")


def _short(error: BaseException) -> str:
    text = str(error)
    return text if len(text) <= 200 else text[:197] + "..."
