"""Inbound limits against a real `tidegate serve` (issue #16: slowloris, half-sent bodies).

Raw sockets, so that the test sends exactly what a slow or hostile client sends: a
request line and headers one byte at a time, a body that stops half-way, oversized
headers and targets, garbage. Every refusal is a JSON error; other clients are served
meanwhile.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_server import Server
from tests.conftest import base_env, offline_address_file

LIMITS = {
    "TIDEGATE_HEADER_TIMEOUT": "1",
    "TIDEGATE_BODY_TIMEOUT": "1",
    "TIDEGATE_SLOW_REQUEST_AFTER": "0.3",
    "TIDEGATE_SLOW_REQUESTS_PER_CLIENT": "3",
    "TIDEGATE_MAX_HEADER_BYTES": "4096",
    "TIDEGATE_MAX_URL_BYTES": "1024",
    "TIDEGATE_MAX_JSON_DEPTH": "8",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("inbound")
    env = {**base_env(tmp), "ADDRESS_FILE": str(offline_address_file(tmp)),
           "TIDEGATE_ACCESS_LOG": "true", **LIMITS}
    running = Server(env, tmp / "server.log")
    try:
        yield running
    finally:
        running.stop()


def _connect(server: Server, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10,
                                    source_address=(source, 0))
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read until the server closes: status, headers, body."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def _json_error(body: bytes, code: str) -> None:
    error = json.loads(body)
    assert set(error) == {"error", "code"} and error["code"] == code, error


def test_slowloris_headers_time_out_with_json_408(server: Server) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(40):  # one byte of a header that never ends, every 0.1 s
                sock.sendall(b"X")
                time.sleep(0.1)
        except OSError:
            pass  # the server closed the connection
        status, headers, body = _answer(sock)
        elapsed = time.monotonic() - started
    assert status == 408 and headers["content-type"] == "application/json"
    _json_error(body, "request_timeout")
    assert 0.9 < elapsed < 2.5, elapsed


def test_a_silent_connection_times_out(server: Server) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        status, _, body = _answer(sock)
    assert status == 408
    _json_error(body, "request_timeout")
    assert time.monotonic() - started < 2.5


def test_a_half_sent_body_times_out(server: Server) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /api/services/fileinfo HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                     b'{"type": "url",')
        status, _, body = _answer(sock)
    assert status == 408
    _json_error(body, "request_timeout")
    assert 0.9 < time.monotonic() - started < 2.5
    log = server.log.read_text()
    assert '"msg":"refused a request: request_timeout (408)"' in log
    assert '"level":"ERROR"' not in log and '"status":500' not in log


def test_a_client_leaving_mid_body_is_a_499_not_a_500(server: Server) -> None:
    """Issue #16: it was logged at ERROR and counted as a 500."""
    with _connect(server) as sock:
        sock.sendall(b"POST /api/services/fileinfo HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                     b'{"type": "url",')
        time.sleep(0.2)  # the app is reading the body
    deadline = time.monotonic() + 5
    while '"status":499' not in server.log.read_text():
        assert time.monotonic() < deadline, "no 499 access record"
        time.sleep(0.05)
    log = server.log.read_text()
    assert '"level":"INFO","logger":"tidegate.errors",' \
           '"msg":"POST /api/services/fileinfo: client disconnected"' in log
    assert '"level":"ERROR"' not in log and '"status":500' not in log
    metrics = httpx.get(server.url + "/metrics").text
    fileinfo = [line for line in metrics.splitlines()
                if line.startswith("tidegate_requests_total") and "fileinfo" in line]
    assert any('status="499"' in line for line in fileinfo), fileinfo
    assert not any('status="500"' in line for line in fileinfo), fileinfo


def test_slow_clients_are_capped_per_address_and_others_are_served(server: Server) -> None:
    slow = [_connect(server) for _ in range(3)]
    try:
        for sock in slow:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.7)  # past TIDEGATE_SLOW_REQUEST_AFTER, within the header timeout
        with _connect(server) as fourth:
            fourth.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = _answer(fourth)
        assert status == 429
        _json_error(body, "too_many_slow_requests")
        # Another address is served, fast, while the slow ones hang on.
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=server.url, transport=transport) as other:
            started = time.monotonic()
            r = other.get("/api/services/nonce",
                          params={"userAddress": "0x" + "11" * 20})
            assert r.status_code == 200 and time.monotonic() - started < 0.5
    finally:
        for sock in slow:
            sock.close()
    # The slow ones gone, the address is served again.
    time.sleep(0.1)
    assert httpx.get(server.url + "/health").status_code == 200


def test_many_slowloris_connections_do_not_block_other_clients(server: Server) -> None:
    stop = threading.Event()
    sockets: list[socket.socket] = []

    def drip() -> None:
        for _ in range(100):
            try:
                sock = _connect(server)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: ")
                sockets.append(sock)
            except OSError:
                pass
            if stop.wait(0.01):
                return

    attacker = threading.Thread(target=drip)
    attacker.start()
    try:
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=server.url, transport=transport) as other:
            for _ in range(20):
                started = time.monotonic()
                assert other.get("/health").status_code == 200
                assert time.monotonic() - started < 0.5
                time.sleep(0.05)
    finally:
        stop.set()
        attacker.join()
        for sock in sockets:
            sock.close()


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n",
     431, "headers_too_large"),
    (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Many: a\r\n" * 500 + b"\r\n",
     431, "headers_too_large"),
    (b"GET /api/services/nonce?userAddress=" + b"1" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     414, "uri_too_long"),
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (b"GET /health HTTP/1.1\r\nBad Header Name: x\r\n\r\n", 400, "bad_request"),
])
def test_oversized_and_malformed_requests_get_json_errors(
    server: Server, request_bytes: bytes, status: int, code: str
) -> None:
    with _connect(server) as sock:
        sock.sendall(request_bytes)
        got, headers, body = _answer(sock)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    _json_error(body, code)


def test_deep_json_is_refused(server: Server) -> None:
    deep = {"type": "url", "url": "http://example.com/x", "headers": {}}
    inner = deep["headers"]
    for _ in range(10):
        inner["a"] = {}
        inner = inner["a"]
    r = httpx.post(server.url + "/api/services/fileinfo", json=deep)
    assert (r.status_code, r.json()["code"]) == (400, "json_too_deep")
    shallow = {"type": "url", "url": "http://127.0.0.1:9/x"}
    r = httpx.post(server.url + "/api/services/fileinfo", json=shallow)
    assert r.status_code == 200  # within the limit: answered (the file is unreachable)


def test_a_large_body_in_big_reads_passes_the_header_check(server: Server) -> None:
    """Head and body arrive in the same reads, far past TIDEGATE_MAX_HEADER_BYTES: only
    the head is measured."""
    body = b"x" * (2 * 1024 * 1024)
    r = httpx.post(server.url + "/api/services/encrypt?chainId=8996", content=body,
                   headers={"Content-Type": "application/octet-stream"}, timeout=30)
    assert r.status_code == 201, r.text
    assert r.text.startswith("0x")


def test_refusals_are_counted(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        _answer(sock)
    metrics = httpx.get(server.url + "/metrics").text
    assert 'tidegate_inbound_refused_total{code="bad_request"}' in metrics


def test_normal_keep_alive_requests_pass(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        for _ in range(5):
            assert client.get("/health").status_code == 200
        r = client.post("/api/services/fileinfo",
                        json={"type": "url", "url": "http://127.0.0.1:9/x"})
        assert r.status_code == 200


def _one_answer(sock: socket.socket) -> bytes:
    """Read one keep-alive answer (its head and Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(65536)
    return head


@pytest.mark.parametrize("second", [
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ",  # a head that never ends
    b"POST /api/services/fileinfo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
    b"\r\nContent-Length: 100\r\n\r\n{\"type\": ",  # a body that stops half-way
], ids=["head", "body"])
def test_the_next_request_of_a_kept_alive_connection_is_timed_too(
        server: Server, second: bytes) -> None:
    """A request that arrives whole in one read is never registered with the timer;
    one that outlives its read is, also when it is not a connection's first."""
    with _connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _one_answer(sock).startswith(b"HTTP/1.1 200")
        time.sleep(0.5)  # idle between requests: not timed
        started = time.monotonic()
        sock.sendall(second)
        status, _, body = _answer(sock)
        elapsed = time.monotonic() - started
    assert status == 408
    _json_error(body, "request_timeout")
    assert 0.9 < elapsed < 2.5, elapsed
