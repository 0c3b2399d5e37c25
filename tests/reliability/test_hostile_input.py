"""Hostile input through a real gateway process: URL tricks aimed at a canary server on a
forbidden loopback address, and header/body abuse at the HTTP layer. (The gateway's own table in
gateway/tests covers plain validation errors and literal private addresses; these are the
cases that need a real listener to prove no connection was made, or raw sockets.)"""

from __future__ import annotations

import socket

import pytest
import requests
from reliability_images import ImageServer
from reliability_processes import GatewayProcess, gateway_env

MAX_REQUEST_BYTES = 1024 * 1024


@pytest.fixture(scope="module")
def other_port_server():
    """An allowed address (127.0.0.3) but on a port that is not in FETCH_ALLOWED_PORTS."""
    with ImageServer("127.0.0.3") as server:
        yield server


@pytest.fixture(scope="module")
def hostile_gateway(model_server, image_server, canary_server, logs_dir):
    # The canary's port IS allowed: only the address rules may stop these fetches.
    env = gateway_env(
        model_server.target,
        image_server.port,
        FETCH_ALLOWED_PORTS=f"80,443,{image_server.port},{canary_server.port}",
        MAX_REQUEST_BYTES=str(MAX_REQUEST_BYTES),
        FETCH_MAX_REDIRECTS="3",
        FETCH_TIMEOUT_SECONDS="3",
    )
    with GatewayProcess(env, logs_dir) as gateway:
        gateway.wait_ready()
        yield gateway
        assert gateway.process.poll() is None, "the gateway died during the hostile tests"
        assert "Traceback" not in gateway.log_text(), gateway.log_text()[-3000:]


def assert_json_error(response: requests.Response, statuses: set[int]):
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:300]
    error = response.json()["error"]
    assert error["code"] and error["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text


# URL -> where it really points. {c}: the canary's port on 127.0.0.1 (forbidden), {a}: the allowed
# image server's port on 127.0.0.3.
URL_TRICKS = [
    "http://127.0.0.1:{c}/small.jpg",  # plain loopback
    "http://localhost:{c}/small.jpg",  # DNS name -> 127.0.0.1
    "http://LOCALHOST:{c}/small.jpg",  # the name in another case
    "http://0177.0.0.1:{c}/small.jpg",  # octal IPv4 (inet_aton reading)
    "http://2130706433:{c}@0177.0.0.01:{c}/small.jpg",  # decimal userinfo, octal host
    "http://017700000001:{c}/small.jpg",  # one octal number
    "http://0x7f.0x0.0x0.0x1:{c}/small.jpg",  # hex per octet
    "http://0X7F000001:{c}/small.jpg",  # one hex number, upper case
    "http://127.1:{c}/small.jpg",  # short form
    "http://127.000.000.001:{c}/small.jpg",  # zero padded
    "http://0.0.0.0:{c}/small.jpg",  # 'this host' reaches loopback on Linux
    "http://0:{c}/small.jpg",
    "http://[::ffff:127.0.0.1]:{c}/small.jpg",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]:{c}/small.jpg",  # the same in hex
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{c}/small.jpg",
    "http://[::127.0.0.1]:{c}/small.jpg",  # IPv4-compatible IPv6 (deprecated form)
    "http://127.0.0.3:{a}@127.0.0.1:{c}/small.jpg",  # userinfo that looks like the allowed host
    "http://127.0.0.1:{c}\\@127.0.0.3:{a}/small.jpg",  # backslash parser confusion
    "http://127.0.0.1:{c}#@127.0.0.3:{a}/small.jpg",  # fragment parser confusion
    "http://127.0.0.3:{a}/to?location=http://127.0.0.1:{c}/small.jpg",  # redirect to the canary
    "http://127.0.0.3:{a}/to?location=http://localhost:{c}/small.jpg",
    "http://127.0.0.3:{a}/to?location=http://[::ffff:127.0.0.1]:{c}/small.jpg",
    "http://127.0.0.3:{a}/to?location=http://0x7f000001:{c}/small.jpg",
    "http://127.0.0.3:{a}/to?location=gopher://127.0.0.1:{c}/_",
]


@pytest.mark.parametrize("template", URL_TRICKS)
def test_url_tricks_never_reach_a_forbidden_address(
    hostile_gateway, image_server, canary_server, template, report
):
    """URL tricks (numeric IPv4 forms, IPv4-mapped IPv6, 0.0.0.0, localhost, userinfo and parser
    confusion, redirects from an allowed server) aimed at a listening canary on 127.0.0.1: each
    gets a 4xx JSON error and the canary never sees a request."""
    url = template.format(c=canary_server.port, a=image_server.port)
    response = requests.post(hostile_gateway.base + "/predict", json={"url": url}, timeout=15)
    assert_json_error(response, {400, 403})
    assert canary_server.total_hits() == 0, canary_server.hits
    report.record(
        "test_url_tricks_never_reach_a_forbidden_address",
        cases=len(URL_TRICKS),
        canary_hits=canary_server.total_hits(),
    )


def test_redirect_chains_and_ports(hostile_gateway, image_server, other_port_server, record):
    """Redirect chains up to FETCH_MAX_REDIRECTS (3) are followed, longer ones refused with JSON;
    an allowed address on a port outside FETCH_ALLOWED_PORTS is refused without a connection."""

    def predict(url):
        return requests.post(hostile_gateway.base + "/predict", json={"url": url}, timeout=15)

    assert predict(image_server.url("/chain/3")).status_code == 200
    too_long = predict(image_server.url("/chain/4"))
    assert_json_error(too_long, {400, 403, 502})
    assert too_long.json()["error"]["code"] == "too_many_redirects"
    assert "/chain/0" not in image_server.hits
    assert_json_error(predict(other_port_server.url("/small.jpg")), {400, 403})
    redirected = predict(image_server.url(f"/to?location={other_port_server.url('/small.jpg')}"))
    assert_json_error(redirected, {400, 403})
    assert other_port_server.total_hits() == 0, other_port_server.hits
    record(cases=4, chain_followed=3, other_port_hits=other_port_server.total_hits())


def _raw(port: int, payload: bytes, read_timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (servers close after errors)."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
                if b"\r\n\r\n" in b"".join(chunks) and b"Connection: close" not in b"".join(chunks):
                    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                    length = [
                        int(field.split(b":")[1])
                        for field in head.split(b"\r\n")
                        if field.lower().startswith(b"content-length:")
                    ]
                    if length and len(body) >= length[0]:
                        break
        except ConnectionResetError:
            pass
    raw = b"".join(chunks)
    assert raw, "no answer at all"
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def _chunked(size: int, chunk: int = 64 * 1024) -> bytes:
    out = bytearray()
    while size > 0:
        n = min(chunk, size)
        out += f"{n:x}\r\n".encode() + b"\xff" * n + b"\r\n"
        size -= n
    return bytes(out + b"0\r\n\r\n")


HEAD = b"POST /predict HTTP/1.1\r\nHost: gw\r\n"
HEADER_ABUSE = {
    "huge header value (300 KiB)": HEAD + b"X-Big: " + b"a" * 300_000 + b"\r\nContent-Length: 2\r\n\r\n{}",
    "20,000 headers": HEAD
    + b"".join(b"X-%d: v\r\n" % i for i in range(20_000))
    + b"Content-Length: 2\r\n\r\n{}",
    "chunked body 3x past the cap": HEAD
    + b"Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
    + _chunked(3 * MAX_REQUEST_BYTES),
    "chunked body just past the cap": HEAD
    + b"Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
    + _chunked(MAX_REQUEST_BYTES + 10),
    "Content-Length past the cap": HEAD
    + b"Content-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (MAX_REQUEST_BYTES + 10)
    + b"\xff" * (MAX_REQUEST_BYTES + 10),
    "Content-Length not a number": HEAD + b"Content-Length: abc\r\n\r\n{}",
    "Content-Length negative": HEAD + b"Content-Length: -5\r\n\r\n{}",
    "Content-Length and chunked together": HEAD
    + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad chunk size": HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "Content-Type image/png with a JSON body": HEAD
    + b'Content-Type: image/png\r\nContent-Length: 13\r\n\r\n{"image": 1}\n',
    "multipart without a boundary": HEAD
    + b"Content-Type: multipart/form-data\r\nContent-Length: 2\r\n\r\n{}",
    "multipart with a broken body": HEAD
    + b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 17\r\n\r\n--xyz\r\nbroken\r\n\r\n",
    "form-encoded body": HEAD
    + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nurl=a.jpg",
    "JSON with a 100,000-deep nesting": HEAD
    + b"Content-Type: application/json\r\nContent-Length: 200000\r\n\r\n"
    + b"[" * 100_000
    + b"]" * 100_000,
    "JSON that is not UTF-8": HEAD
    + b'Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{"url": "\xff\xfe"}',
    "non-ASCII bytes in a header": HEAD + b"X-Name: \xff\xfe\x00\x01\r\nContent-Length: 2\r\n\r\n{}",
}


@pytest.mark.parametrize("case", list(HEADER_ABUSE))
def test_header_and_body_abuse_gets_a_4xx_json_answer(hostile_gateway, case, report):
    """Header and framing abuse over a raw socket (huge or countless headers, chunked bodies past
    MAX_REQUEST_BYTES, contradictory lengths, wrong Content-Type, deep JSON): a 4xx JSON error,
    never a 500 or a stack trace, and the gateway keeps serving."""
    status, headers, body = _raw(hostile_gateway.port, HEADER_ABUSE[case])
    report.record("test_header_and_body_abuse_gets_a_4xx_json_answer", cases=len(HEADER_ABUSE))
    assert 400 <= status < 500, (status, body[:300])
    assert headers.get("Content-Type", "").startswith("application/json"), (status, headers, body[:300])
    assert b'"error"' in body and b"Traceback" not in body
    assert requests.get(hostile_gateway.base + "/healthz", timeout=5).status_code == 200
