"""URL fetching policy. Refusals of literal addresses happen before any connection, so most of
these need no network; the ones that talk to a real loopback HTTP server are integration tests.
The fetcher runs through loop_fetcher's synchronous adapter; its kept-alive connections are
tested in test_gateway_fetch_pool.py."""

import ipaddress
import threading
import time

import pytest
from keep_alive_server import KeepAliveServer
from loop_fetcher import ImageFetcher, loopback_fetcher

from gateway import fetch
from gateway.errors import GatewayError
from gateway.settings import Settings

REFUSED = [
    "http://127.0.0.1/x.jpg",
    "http://127.1/x.jpg",
    "http://2130706433/x.jpg",
    "http://0x7f000001/x.jpg",
    "http://0.0.0.0/x.jpg",
    "http://10.0.0.1/x.jpg",
    "http://172.16.5.4/x.jpg",
    "http://192.168.1.1/x.jpg",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/x.jpg",
    "http://224.0.0.1/x.jpg",
    "http://240.0.0.1/x.jpg",
    "http://255.255.255.255/x.jpg",
    "http://[::1]/x.jpg",
    "http://[::]/x.jpg",
    "http://[::ffff:127.0.0.1]/x.jpg",
    "http://[::ffff:169.254.169.254]/x.jpg",
    "http://[fe80::1]/x.jpg",
    "http://[fc00::1]/x.jpg",
    "http://[fd12:3456::1]/x.jpg",
    "http://[ff02::1]/x.jpg",
    "http://[64:ff9b::a9fe:a9fe]/x.jpg",
    "http://[2002:7f00:1::]/x.jpg",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_special_addresses_are_refused(url):
    with pytest.raises(GatewayError) as caught:
        ImageFetcher(Settings()).fetch(url)
    assert (caught.value.status, caught.value.code) == (403, "url_forbidden")


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://example.com/",
        "ftp://example.com/a.jpg",
        "javascript:alert(1)",
        "not a url",
        "http://",
    ],
)
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
@pytest.mark.integration
def test_fetches_an_allowed_image(image_server, sample_jpeg):
    assert loopback_fetcher(image_server).fetch(image_server.url("/img/hat.jpg")) == sample_jpeg


@pytest.mark.integration
def test_names_are_resolved_through_the_policy(image_server, sample_jpeg):
    """A host name (not a literal) reaches aiohttp's resolver seam: it connects only to answers
    the policy permits — refused by default, fetched once loopback is allowed."""
    url = f"http://localhost:{image_server.port}/img/hat.jpg"
    with pytest.raises(GatewayError) as caught:
        ImageFetcher(Settings(fetch_allowed_ports=frozenset({image_server.port}))).fetch(url)
    assert (caught.value.status, caught.value.code) == (403, "url_forbidden")
    assert "127.0.0.1" in caught.value.message or "::1" in caught.value.message
    assert (
        loopback_fetcher(
            image_server,
            fetch_allowed_networks=(ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128")),
        ).fetch(url)
        == sample_jpeg
    )


@pytest.mark.integration
def test_loopback_is_refused_by_default_even_when_listening(image_server):
    before = dict(image_server.hits)
    with pytest.raises(GatewayError) as caught:
        ImageFetcher(Settings(fetch_allowed_ports=frozenset({image_server.port}))).fetch(
            image_server.url("/img/hat.jpg")
        )
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
@pytest.mark.parametrize(("path", "reserved"), [("/img/hat.jpg", "length"), ("/big-chunked", "cap")])
def test_the_download_is_reserved_before_its_body_is_read(image_server, sample_jpeg, path, reserved):
    """reserve(size) gets the Content-Length, or FETCH_MAX_BYTES without one; when it refuses,
    that refusal is the fetch's answer and no body is returned."""
    cap = 3 * 1024 * 1024
    fetcher = loopback_fetcher(image_server, fetch_max_bytes=cap)
    sizes = []
    body = fetcher.fetch(image_server.url(path), reserve=sizes.append)
    assert sizes == [len(body) if reserved == "length" else cap], (sizes, len(body))
    if path == "/img/hat.jpg":
        assert body == sample_jpeg

    def refuse(size):
        raise GatewayError(503, "server_busy", f"no room for {size}")

    with pytest.raises(GatewayError) as caught:
        fetcher.fetch(image_server.url(path), reserve=refuse)
    assert (caught.value.status, caught.value.code) == (503, "server_busy")
    fetcher.close()


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


@pytest.mark.integration
def test_deadlines_hold_for_concurrent_fetches_without_a_thread_per_fetch(image_server, sample_jpeg):
    """The event loop's timers serve every fetch's deadline: stalled fetches from several threads
    all end at their own deadline, a fast fetch beside them is not held up, and fetching starts
    no thread of its own."""
    import concurrent.futures

    fetcher = loopback_fetcher(image_server, fetch_timeout_seconds=1.0)
    fetcher.fetch(image_server.url("/img/hat.jpg"))  # the loop's thread exists from here on
    threads_before = {t.ident for t in threading.enumerate()}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:

        def timed(path):
            start = time.monotonic()
            try:
                return fetcher.fetch(image_server.url(path)), time.monotonic() - start
            except GatewayError as error:
                return error.code, time.monotonic() - start

        stalled = [pool.submit(timed, path) for path in ("/stall", "/slow", "/stall", "/slow")]
        time.sleep(0.2)
        fast = pool.submit(timed, "/img/hat.jpg")
        body, fast_seconds = fast.result()
        assert body == sample_jpeg and fast_seconds < 0.5
        for future in stalled:
            code, seconds = future.result()
            assert code == "fetch_timeout"
            assert 0.9 < seconds < 2.0, seconds
        names = [t.name for t in threading.enumerate()]
        started = [t.name for t in threading.enumerate() if t.ident not in threads_before]
        ours = [n for n in started if "ThreadPoolExecutor" not in n and "process_request_thread" not in n]
        assert not ours, names  # only this test's pool and the image server's handlers are new
        assert not any(isinstance(t, threading.Timer) for t in threading.enumerate()), names


class _TLSImageServer:
    """A real HTTPS server on 127.0.0.1 serving `body` at every path, with a certificate from a
    throwaway CA (trustme) issued for `names`."""

    def __init__(self, ca, body: bytes, names: tuple[str, ...]):
        import http.server
        import ssl

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*names).configure_cert(context)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _tls_fetcher(port: int, ca=None) -> ImageFetcher:
    fetcher = ImageFetcher(
        Settings(
            fetch_allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
            fetch_allowed_ports=frozenset({port}),
        )
    )
    if ca is not None:
        ca.configure_trust(fetcher.tls)  # the test CA, in addition to certifi's bundle
    return fetcher


@pytest.mark.integration
def test_https_fetch_verifies_the_certificate_against_the_host(sample_jpeg):
    import trustme

    ca = trustme.CA()
    good = _TLSImageServer(ca, sample_jpeg, ("127.0.0.1",))
    wrong_name = _TLSImageServer(ca, sample_jpeg, ("images.example",))
    try:
        assert _tls_fetcher(good.port, ca).fetch(f"https://127.0.0.1:{good.port}/hat.jpg") == sample_jpeg
        # A certificate for another name, and one from a CA nobody trusts: both refused, as 502.
        for fetcher, port in (
            (_tls_fetcher(wrong_name.port, ca), wrong_name.port),
            (_tls_fetcher(good.port), good.port),
        ):
            with pytest.raises(GatewayError) as caught:
                fetcher.fetch(f"https://127.0.0.1:{port}/hat.jpg")
            assert (caught.value.status, caught.value.code) == (502, "fetch_failed")
            assert "TLS" in caught.value.message and "CERTIFICATE_VERIFY_FAILED" in caught.value.message
    finally:
        good.close()
        wrong_name.close()


@pytest.mark.integration
def test_request_targets_are_percent_encoded_and_hosts_sent(image_server, sample_jpeg):
    """Non-ASCII (and spaces, which the policy refuses before this) in a URL's path and query reach the server percent-encoded (UTF-8),
    existing escapes stay as they are, and the Host header names the host and port."""
    assert fetch._request_target("http://h/a b/ü.jpg?q=x y&r=%41") == "/a%20b/%C3%BC.jpg?q=x%20y&r=%41"
    assert fetch._request_target("http://h") == "/"
    server = KeepAliveServer(sample_jpeg)
    try:
        fetcher = ImageFetcher(
            Settings(
                fetch_allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
                fetch_allowed_ports=frozenset({server.port}),
            )
        )
        assert fetcher.fetch(f"http://127.0.0.1:{server.port}/dir/hät.jpg?tag=ü") == sample_jpeg
        head = server.requests[-1].decode("ascii")
        assert head.startswith("GET /dir/h%C3%A4t.jpg?tag=%C3%BC HTTP/1.1\r\n"), head
        assert f"\r\nHost: 127.0.0.1:{server.port}" in head
        assert "\r\nAccept-Encoding: identity" in head
    finally:
        server.close()


@pytest.mark.integration
def test_a_slow_redirect_chain_ends_at_the_total_deadline():
    """Every hop of a redirect chain answers after 0.4 s, forever: the chain as a whole is cut at
    the fetch's total deadline (1 s), not at the redirect cap times the per-hop time."""
    import http.server

    class SlowRedirects(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(0.4)
            self.send_response(302)
            self.send_header("Location", "/again")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowRedirects)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        fetcher = ImageFetcher(
            Settings(
                fetch_allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
                fetch_allowed_ports=frozenset({port}),
                fetch_max_redirects=10,
                fetch_timeout_seconds=1.0,
            )
        )
        start = time.monotonic()
        with pytest.raises(GatewayError) as caught:
            fetcher.fetch(f"http://127.0.0.1:{port}/start")
        assert (caught.value.status, caught.value.code) == (504, "fetch_timeout")
        assert 0.9 < time.monotonic() - start < 1.6
    finally:
        server.shutdown()
        server.server_close()
