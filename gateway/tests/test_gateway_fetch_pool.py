"""The image fetcher's kept-alive connections: reuse, replacement of a connection the server
closed, deadlines on reused connections, idle expiry, and what is never kept."""

import time

import pytest
from keep_alive_server import KeepAliveServer
from loop_fetcher import keep_alive_fetcher, loopback_fetcher

from gateway import fetch
from gateway.errors import GatewayError


@pytest.fixture
def keep_alive_server(sample_jpeg, request):
    server = KeepAliveServer(sample_jpeg, **getattr(request, "param", {}))
    yield server
    server.close()


@pytest.mark.integration
def test_fetches_from_one_host_reuse_a_kept_alive_connection(keep_alive_server, sample_jpeg):
    """A connection that ended a complete response is reused by the next fetch from that host
    (no new TCP connection, resolve or TLS handshake per image)."""
    fetcher = keep_alive_fetcher(keep_alive_server)
    for _ in range(3):
        assert fetcher.fetch(f"http://127.0.0.1:{keep_alive_server.port}/hat.jpg") == sample_jpeg
    assert keep_alive_server.connections == 1
    assert len(keep_alive_server.requests) == 3
    assert not any(b"Connection: close" in head for head in keep_alive_server.requests)
    assert fetcher.idle_connections() == 1


@pytest.mark.integration
@pytest.mark.parametrize("keep_alive_server", [{"close_silently": True}], indirect=True)
def test_a_kept_alive_connection_the_server_closed_is_replaced_transparently(keep_alive_server, sample_jpeg):
    fetcher = keep_alive_fetcher(keep_alive_server)
    for _ in range(3):
        assert fetcher.fetch(f"http://127.0.0.1:{keep_alive_server.port}/hat.jpg") == sample_jpeg
        time.sleep(0.05)  # let the server's close arrive: the next fetch finds a dead connection
    assert keep_alive_server.connections == 3


@pytest.mark.integration
@pytest.mark.parametrize("keep_alive_server", [{"answer_once": True}], indirect=True)
def test_a_reused_connection_is_under_the_fetch_deadline(keep_alive_server, sample_jpeg):
    fetcher = keep_alive_fetcher(keep_alive_server, fetch_timeout_seconds=1.0)
    url = f"http://127.0.0.1:{keep_alive_server.port}/hat.jpg"
    assert fetcher.fetch(url) == sample_jpeg
    start = time.monotonic()
    with pytest.raises(GatewayError) as caught:
        fetcher.fetch(url)  # the kept connection never answers again
    assert caught.value.code == "fetch_timeout"
    assert 0.9 < time.monotonic() - start < 2.0
    assert keep_alive_server.connections == 1  # a timeout is not resent on a new connection
    assert fetcher.idle_connections() == 0  # and the dead connection is not kept


@pytest.mark.integration
def test_idle_connections_expire(keep_alive_server, sample_jpeg, monkeypatch):
    monkeypatch.setattr(fetch, "POOL_IDLE_SECONDS", 0.0)
    fetcher = keep_alive_fetcher(keep_alive_server)
    for _ in range(2):
        assert fetcher.fetch(f"http://127.0.0.1:{keep_alive_server.port}/hat.jpg") == sample_jpeg
    assert keep_alive_server.connections == 2


@pytest.mark.integration
def test_idle_connections_are_closed_on_time_without_another_fetch(
    keep_alive_server, sample_jpeg, monkeypatch
):
    """An idle gateway does not keep sockets open to every host it once fetched from: the
    reaper's sweep closes each pooled connection when its idle time ends, and a connection put
    back later gets its own sweep."""
    monkeypatch.setattr(fetch, "POOL_IDLE_SECONDS", 0.3)
    fetcher = keep_alive_fetcher(keep_alive_server)
    url = f"http://127.0.0.1:{keep_alive_server.port}/hat.jpg"

    def closed_within(seconds: float, count: int) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if keep_alive_server.closed_by_client == count and fetcher.idle_connections() == 0:
                return True
            time.sleep(0.02)
        return False

    for round_ in (1, 2):
        start = time.monotonic()
        assert fetcher.fetch(url) == sample_jpeg
        assert fetcher.idle_connections() == 1
        assert keep_alive_server.closed_by_client == round_ - 1  # kept open while fresh
        assert closed_within(2.0, round_), (keep_alive_server.closed_by_client, fetcher.idle_connections())
        assert time.monotonic() - start >= 0.3
    assert keep_alive_server.connections == 2


@pytest.mark.integration
def test_connections_the_server_will_close_or_left_mid_response_are_not_kept(image_server):
    """The test image server answers `Connection: close`; errors and redirects close theirs."""
    fetcher = loopback_fetcher(image_server, fetch_max_bytes=1024 * 1024)
    fetcher.fetch(image_server.url("/img/hat.jpg"))
    for path in ("/status/404", "/redirect?to=/status/500", "/big"):
        with pytest.raises(GatewayError):
            fetcher.fetch(image_server.url(path))
    assert fetcher.idle_connections() == 0


@pytest.mark.integration
def test_a_pooled_connection_does_not_carry_a_redirect_past_the_address_check(
    keep_alive_server, image_server
):
    """A kept connection is keyed by scheme, host and port: a redirect to another port or host
    is checked and connected on its own (here: to a port outside the allowlist)."""
    fetcher = keep_alive_fetcher(keep_alive_server)
    fetcher.fetch(f"http://127.0.0.1:{keep_alive_server.port}/hat.jpg")
    assert fetcher.idle_connections() == 1
    with pytest.raises(GatewayError) as caught:
        fetcher.fetch(image_server.url(f"/redirect?to=http://127.0.0.1:{keep_alive_server.port}/x.jpg"))
    assert caught.value.code == "url_forbidden"  # image_server's port is not allowed
