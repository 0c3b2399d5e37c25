"""URL fetching policy. Refusals of literal addresses happen before any connection, so most of
these need no network; the ones that talk to a real loopback HTTP server are integration tests."""
import ipaddress
import time

import pytest

from gateway.errors import GatewayError
from gateway.fetch import ImageFetcher
from gateway.settings import Settings

REFUSED = [
    "http://127.0.0.1/x.jpg", "http://127.1/x.jpg", "http://2130706433/x.jpg", "http://0x7f000001/x.jpg",
    "http://0.0.0.0/x.jpg", "http://10.0.0.1/x.jpg", "http://172.16.5.4/x.jpg", "http://192.168.1.1/x.jpg",
    "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/x.jpg", "http://224.0.0.1/x.jpg",
    "http://240.0.0.1/x.jpg", "http://255.255.255.255/x.jpg", "http://[::1]/x.jpg", "http://[::]/x.jpg",
    "http://[::ffff:127.0.0.1]/x.jpg", "http://[::ffff:169.254.169.254]/x.jpg", "http://[fe80::1]/x.jpg",
    "http://[fc00::1]/x.jpg", "http://[fd12:3456::1]/x.jpg", "http://[ff02::1]/x.jpg",
    "http://[64:ff9b::a9fe:a9fe]/x.jpg", "http://[2002:7f00:1::]/x.jpg",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_special_addresses_are_refused(url):
    with pytest.raises(GatewayError) as caught:
        ImageFetcher(Settings()).fetch(url)
    assert (caught.value.status, caught.value.code) == (403, "url_forbidden")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://example.com/", "ftp://example.com/a.jpg",
                                 "javascript:alert(1)", "not a url", "http://"])
def test_only_http_and_https_urls(url):
    with pytest.raises(GatewayError) as caught:
        ImageFetcher(Settings()).fetch(url)
    assert caught.value.status in (400, 403)
    assert caught.value.code in ("invalid_url", "url_forbidden")


def test_credentials_in_the_url_are_refused():
    with pytest.raises(GatewayError) as caught:
        ImageFetcher(Settings()).fetch("http://user:pw@example.com/x.jpg")
    assert caught.value.code == "url_forbidden"


def test_ports_outside_the_allowlist_are_refused():
    with pytest.raises(GatewayError) as caught:
        ImageFetcher(Settings()).fetch("http://example.com:6379/x.jpg")
    assert caught.value.code == "url_forbidden" and "6379" in caught.value.message


def test_allowed_networks_do_not_open_other_private_ranges():
    fetcher = ImageFetcher(Settings(fetch_allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),)))
    for url in ("http://10.1.2.3/x.jpg", "http://169.254.169.254/", "http://[::1]/x.jpg"):
        with pytest.raises(GatewayError) as caught:
            fetcher.fetch(url)
        assert caught.value.code == "url_forbidden"


# ---- against a real loopback HTTP server --------------------------------------------------------
def loopback_fetcher(image_server, **overrides) -> ImageFetcher:
    settings = dict(
        fetch_allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
        fetch_allowed_ports=frozenset({image_server.port}),
        fetch_timeout_seconds=1.5,
    )
    settings.update(overrides)
    return ImageFetcher(Settings(**settings))


@pytest.mark.integration
def test_fetches_an_allowed_image(image_server, sample_jpeg):
    assert loopback_fetcher(image_server).fetch(image_server.url("/img/hat.jpg")) == sample_jpeg


@pytest.mark.integration
def test_loopback_is_refused_by_default_even_when_listening(image_server):
    before = dict(image_server.hits)
    with pytest.raises(GatewayError) as caught:
        ImageFetcher(Settings(fetch_allowed_ports=frozenset({image_server.port}))).fetch(
            image_server.url("/img/hat.jpg"))
    assert caught.value.code == "url_forbidden"
    assert image_server.hits == before  # never connected


@pytest.mark.integration
def test_content_type_is_not_trusted_bytes_are(image_server, sample_jpeg):
    fetcher = loopback_fetcher(image_server)
    assert fetcher.fetch(image_server.url("/as-text/hat.jpg")) == sample_jpeg
    with pytest.raises(GatewayError) as caught:
        fetcher.fetch(image_server.url("/html-as-jpeg"))
    assert caught.value.status == 415


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_byte_cap_is_enforced_while_streaming(image_server, path):
    with pytest.raises(GatewayError) as caught:
        loopback_fetcher(image_server, fetch_max_bytes=100_000).fetch(image_server.url(path))
    assert (caught.value.status, caught.value.code) == (413, "image_too_large")


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/slow", "/stall"])
def test_total_deadline_bounds_slow_servers(image_server, path):
    start = time.monotonic()
    with pytest.raises(GatewayError) as caught:
        loopback_fetcher(image_server, fetch_timeout_seconds=1.0).fetch(image_server.url(path))
    assert (caught.value.status, caught.value.code) == (504, "fetch_timeout")
    assert time.monotonic() - start < 2.5


@pytest.mark.integration
def test_redirects_are_followed_rechecked_and_capped(image_server, sample_jpeg):
    fetcher = loopback_fetcher(image_server, fetch_max_redirects=3)
    assert fetcher.fetch(image_server.url("/chain/3")) == sample_jpeg
    with pytest.raises(GatewayError) as caught:
        fetcher.fetch(image_server.url("/chain/4"))
    assert caught.value.code == "too_many_redirects"
    for target in ("http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://10.0.0.8/"):
        with pytest.raises(GatewayError) as caught:
            fetcher.fetch(image_server.url(f"/redirect?to={target}"))
        assert caught.value.code == "url_forbidden", target


@pytest.mark.integration
def test_upstream_errors_are_bad_gateway(image_server):
    with pytest.raises(GatewayError) as caught:
        loopback_fetcher(image_server).fetch(image_server.url("/status/404"))
    assert (caught.value.status, caught.value.code) == (502, "fetch_failed")
    assert "404" in caught.value.message
