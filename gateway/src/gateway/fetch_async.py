"""The image fetch of fetch.py on an event loop (work in progress toward an asyncio gateway;
nothing serves through it yet). Same policy, same answers, other plumbing:

- aiohttp's client does the HTTP (its C parser, its kept-alive connection pool with idle expiry,
  TLS verified against the URL's host name);
- every name it resolves goes through `_CheckedResolver`: ssrfguard's `resolve` (one lookup,
  every answer checked, only permitted answers returned), run in a worker thread because
  getaddrinfo blocks — aiohttp then connects only to those addresses. A URL with a literal
  address never reaches a resolver in aiohttp, which is why `Policy.check_url` (which judges
  literals) runs first for every URL and every redirect hop, as in fetch.py;
- one `asyncio.timeout` bounds the whole fetch (connect, headers dripped byte by byte, a
  trickling body, a redirect chain); a byte cap while streaming; redirects followed by hand.

A pooled connection stays connected to the address that was checked when it was opened, as in
fetch.py's pool. No proxies (`trust_env` off), no automatic decompression.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import urllib.parse

import aiohttp
import certifi
from aiohttp.abc import AbstractResolver, ResolveResult
from ssrfguard import BlockedAddressError, BlockedURLError, Policy, SSRFGuardError, Target, resolve
from yarl import URL

from gateway import fetch_sockets
from gateway.errors import GatewayError
from gateway.fetch import (
    _REDIRECTS,
    _SNIFF_BYTES,
    _USER_AGENT,
    FetchLimits,
    _host_header,
    _request_target,
    _short,
    _timeout,
    _too_large,
    build_policy,
)
from gateway.imaging import sniff_format
from gateway.settings import Settings

_CHUNK = 256 * 1024


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


class AsyncImageFetcher:
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
                limit=fetch_sockets.POOL_TOTAL,
                limit_per_host=0,  # concurrency is bounded by the gateway, not by waiting here
                keepalive_timeout=fetch_sockets.POOL_IDLE_SECONDS,
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

    async def fetch(self, url: str) -> bytes:
        if not isinstance(url, str) or not url:
            raise GatewayError(400, "invalid_url", "url must be a non-empty string")
        try:
            async with asyncio.timeout(self.limits.total_timeout):
                return await self._follow(url)
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

    async def _follow(self, url: str) -> bytes:
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
                    return await self._read_body(response)
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

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytes:
        if response.status != 200:
            raise GatewayError(502, "fetch_failed", f"the image URL answered HTTP {response.status}")
        if response.content_length is not None and response.content_length > self.limits.max_bytes:
            raise _too_large(self.limits.max_bytes)
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
