"""safe_fetch against real local servers: address policy, pinning, redirects, limits.

The servers (plain HTTP, TLS with a self-signed certificate, a black hole) run in
threads on 127.0.0.1; fake hostnames reach them through an injected resolver.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import ipaddress
import json
import logging
import random
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import httpx
import pytest
from tests.local_http import LocalServer, QuietHandler

from tidegate.errors import TidegateError
from tidegate.files.address_policy import (
    AddressClass,
    ConnectionPin,
    classify_address,
    is_allowed,
    pinned,
)
from tidegate.files.read_budget import MAX_READ
from tidegate.files.safe_fetch import (
    DEFAULT_CHUNK_SIZE,
    FetchPolicy,
    PinnedAsyncClient,
    SafeFetcher,
    UnsafeUrlError,
    UpstreamTimeoutError,
    UpstreamTooLargeError,
    UpstreamUnavailableError,
    is_public_address,
    redact_url,
)

# --- servers ------------------------------------------------------------------------

#: 5 MiB of deterministic, incompressible bytes served at /big.
BIG = random.Random(20261124).randbytes(5 * 1024 * 1024)


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


class FileServer(LocalServer):
    """A threaded HTTP/1.1 server on 127.0.0.1 with a route per behaviour under test."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(_Handler, host)
        self.requests: list[Seen] = []
        self.release = threading.Event()  # set at teardown to end the slow routes
        self.sni: list[str | None] = []

    def stop(self) -> None:
        self.release.set()  # the slow routes end, so the handler threads can be joined
        super().stop()

    def use_tls(self, cert: Path, key: Path) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
        self.socket = context.wrap_socket(self.socket, server_side=True)


class _Handler(QuietHandler):
    timeout = 5  # idle keep-alive connections end by themselves
    server: FileServer

    def do_GET(self) -> None:
        self._route()

    do_POST = do_HEAD = do_GET

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        self.server.requests.append(Seen(self.command, self.path, dict(self.headers), body))
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        try:
            self._answer(url.path, query, body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def _answer(self, path: str, query: dict[str, str], body: bytes) -> None:
        if path == "/small":
            self._send(200, b"hello", "text/plain")
        elif path == "/echo":
            seen = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(),
            }
            self._send(200, json.dumps(seen).encode(), "application/json")
        elif path == "/big":
            self._big()
        elif path == "/redirect":
            self._redirect(int(query.get("code", "302")), query["to"])
        elif path.startswith("/chain/"):
            left = int(path.rsplit("/", 1)[1])
            if left == 0:
                self._send(200, b"end of chain", "text/plain")
            else:
                self._redirect(302, f"/chain/{left - 1}")
        elif path == "/dir/relative":
            self._redirect(302, "../small")
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"status", "text/plain")
        elif path == "/slow-headers":
            self.server.release.wait(10)
            self._send(200, b"too late", "text/plain")
        elif path == "/slow-body":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.server.release.wait(10)
            self.wfile.write(b"x" * 990)
        elif path == "/drip":  # one byte per 0.1 s: never a read timeout, never done
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"d")
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "/close":
            self.close_connection = True
            self.send_response(200)
            self.send_header("Connection", "close")
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"close")
        elif path == "/drop":
            self.close_connection = True  # no answer at all
        elif path == "/cookie":
            self.send_response(200)
            self.send_header("Set-Cookie", "session=s3cret; Path=/")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        elif path == "/gzip":
            packed = gzip.compress(BIG[:100_000])
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(packed)))
            self.end_headers()
            self.wfile.write(packed)
        elif path == "/unbounded":
            # No Content-Length: the body ends when the connection closes.
            self.close_connection = True
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(64):
                self.wfile.write(b"u" * 65536)
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, status: int, location: str) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _big(self) -> None:
        spec = self.headers.get("Range")
        if spec is None:
            self._send(200, BIG, "application/octet-stream")
            return
        first, last = (int(part) for part in spec.removeprefix("bytes=").split("-"))
        part = BIG[first : last + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {first}-{last}/{len(BIG)}")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)


@pytest.fixture(scope="module")
def server() -> Iterator[FileServer]:
    """A plain HTTP file server on 127.0.0.1."""
    running = FileServer().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def server_v6() -> Iterator[FileServer]:
    """A plain HTTP file server on ::1."""
    try:
        running = FileServer("::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for files.example.test (needs the openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=files.example.test",
         "-addext", "subjectAltName=DNS:files.example.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_server(certificate: tuple[Path, Path]) -> Iterator[FileServer]:
    """An HTTPS file server on 127.0.0.1 whose certificate names only files.example.test."""
    running = FileServer()
    running.use_tls(*certificate)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port on 127.0.0.1 whose connects hang: the listener's accept queue is full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    filler = socket.create_connection(("127.0.0.1", port))  # takes the only queue slot
    yield port
    filler.close()
    listener.close()


# --- helpers ------------------------------------------------------------------------

HOST = "files.example.test"


class FakeDns:
    """Injected resolver: the first lookup of a name answers from ``first``, later ones
    from ``later``; unknown names fail like the system resolver does."""

    def __init__(
        self, first: dict[str, list[str]], later: dict[str, list[str]] | None = None
    ) -> None:
        self.first = first
        self.later = first if later is None else later
        self.calls: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        table = self.later if host in self.calls else self.first
        self.calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host])


async def no_dns(host: str) -> list[str]:
    raise AssertionError("an IP literal must not be resolved")


def local_dns(*names: str) -> FakeDns:
    return FakeDns({name: ["127.0.0.1"] for name in (HOST, *names)})


@pytest.fixture
async def client() -> AsyncIterator[PinnedAsyncClient]:
    async with PinnedAsyncClient() as pinned_client:
        yield pinned_client


def fetcher(
    client: PinnedAsyncClient,
    resolver: Callable[[str], Awaitable[list[str]]] | None = None,
    *,
    allow_private: bool = True,
    **limits: Any,
) -> SafeFetcher:
    settings: dict[str, Any] = {"connect_timeout": 2.0, "read_timeout": 2.0, **limits}
    return SafeFetcher(client, FetchPolicy(allow_private, **settings), resolver or local_dns())


def url(server: FileServer, path: str, host: str = HOST, scheme: str = "http") -> str:
    return f"{scheme}://{host}:{server.port}{path}"


def assert_scrubbed(message: BaseException | str, *secrets: str) -> None:
    """The message names no URL, host, address, port or path."""
    text = str(message)
    for secret in ("example.test", "127.0.0.1", "169.254", "::1", "://", "/", *secrets):
        assert secret not in text, (secret, text)


# --- address classification (no network) -------------------------------------------

REFUSED = [
    "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255",
    "192.168.1.1", "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.254",
    "0.0.0.0", "0.1.2.3", "255.255.255.255", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "198.18.0.1", "198.19.255.255", "192.0.2.1", "198.51.100.1", "203.0.113.1",
    "192.0.0.1", "192.88.99.1",
    "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%1", "fec0::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::a00:1", "64:ff9b:1::1",
    "2002:7f00:1::1", "2002:c0a8:101::1", "2002:a9fe:a9fe::1",
    "2001:db8::1", "2001::1", "3fff::1", "::127.0.0.1", "100::1", "5f00::1",
]  # fmt: skip
PUBLIC = [
    "8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1", "100.128.0.1", "11.0.0.1",
    "198.20.0.1", "2606:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8",
    "64:ff9b::808:808", "2002:808:808::1",
]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))
    assert not is_allowed(ipaddress.ip_address(address), allow_private_addresses=False)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("address", "tier"),
    [
        ("127.0.0.1", AddressClass.PRIVATE),
        ("10.0.0.1", AddressClass.PRIVATE),
        ("::1", AddressClass.PRIVATE),
        ("fd00::1", AddressClass.PRIVATE),
        ("::ffff:192.168.0.1", AddressClass.PRIVATE),
        ("169.254.169.254", AddressClass.FORBIDDEN),
        ("::ffff:169.254.169.254", AddressClass.FORBIDDEN),
        ("fe80::1", AddressClass.FORBIDDEN),
        ("0.0.0.0", AddressClass.FORBIDDEN),
        ("::", AddressClass.FORBIDDEN),
        ("224.0.0.1", AddressClass.FORBIDDEN),
        ("8.8.8.8", AddressClass.PUBLIC),
    ],
)
def test_allowing_private_addresses_never_opens_metadata_or_link_local(
    address: str, tier: AddressClass
) -> None:
    ip = ipaddress.ip_address(address)
    assert classify_address(ip) is tier
    assert is_allowed(ip, allow_private_addresses=True) is (tier is not AddressClass.FORBIDDEN)


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        FetchPolicy(False, connect_timeout=0, read_timeout=1)
    with pytest.raises(ValueError):
        FetchPolicy(False, connect_timeout=1, read_timeout=1, max_redirects=-1)
    with pytest.raises(ValueError):
        FetchPolicy(False, connect_timeout=1, read_timeout=1, total_timeout=0)


def test_redact_url_keeps_only_the_scheme() -> None:
    assert redact_url("https://user:pw@files.example.test/a?key=secret") == "https"
    assert redact_url("ftp://files.example.test/") == "<url>"
    assert redact_url("no scheme here") == "<url>"
    assert redact_url("http://[bad") == "http"


# --- refusals before any connection ---------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/small",
        "http://[::1]:{port}/small",
        "http://0.0.0.0:{port}/small",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://[::ffff:127.0.0.1]:{port}/small",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[fc00::1]/",
        "http://[64:ff9b::7f00:1]:{port}/small",
    ],
)
async def test_ip_literals_are_checked_without_dns(
    client: PinnedAsyncClient, server: FileServer, target: str
) -> None:
    before = len(server.requests)
    with pytest.raises(UnsafeUrlError) as caught:
        await fetcher(client, no_dns, allow_private=False).open(
            "GET", target.format(port=server.port)
        )
    assert caught.value.status == 400 and caught.value.code == "unsafe_url"
    assert_scrubbed(caught.value, str(server.port))
    assert len(server.requests) == before


@pytest.mark.parametrize("host", ["localhost", "127.1", "2130706433"])
async def test_system_resolver_answers_are_checked(
    client: PinnedAsyncClient, server: FileServer, host: str
) -> None:
    policy = FetchPolicy(False, connect_timeout=2, read_timeout=2)
    before = len(server.requests)
    with pytest.raises(UnsafeUrlError):
        await SafeFetcher(client, policy).open("GET", url(server, "/small", host))
    assert len(server.requests) == before


@pytest.mark.parametrize(
    "target",
    [
        "ftp://files.example.test/x",
        "file:///etc/passwd",
        "http://user:secret@files.example.test/x",
        "http:///no-host",
        "http://[::1",
        "gopher://files.example.test:70/",
    ],
)
async def test_bad_urls_are_refused(client: PinnedAsyncClient, target: str) -> None:
    with pytest.raises(UnsafeUrlError) as caught:
        await fetcher(client).open("GET", target)
    assert_scrubbed(caught.value, "secret", "passwd")


async def test_only_get_head_post(client: PinnedAsyncClient, server: FileServer) -> None:
    with pytest.raises(UnsafeUrlError):
        await fetcher(client).open("DELETE", url(server, "/small"))


async def test_one_private_answer_among_public_ones_is_refused(
    client: PinnedAsyncClient,
) -> None:
    dns = FakeDns({HOST: ["93.184.216.34", "2606:4700::1111", "10.0.0.5"]})
    with pytest.raises(UnsafeUrlError) as caught:
        await fetcher(client, dns, allow_private=False).open("GET", f"http://{HOST}/x")
    assert_scrubbed(caught.value, "10.0.0.5", "93.184")


async def _hang(host: str) -> list[str]:
    await asyncio.sleep(30)
    return ["127.0.0.1"]


async def _garbage(host: str) -> list[str]:
    return ["not-an-address"]


@pytest.mark.parametrize("resolver", [FakeDns({}), FakeDns({HOST: []}), _garbage, _hang])
async def test_dns_failure_is_a_refusal(
    client: PinnedAsyncClient, resolver: Callable[[str], Awaitable[list[str]]]
) -> None:
    started = time.monotonic()
    with pytest.raises(UnsafeUrlError) as caught:
        await fetcher(client, resolver, connect_timeout=0.2).open("GET", f"http://{HOST}/x")
    assert time.monotonic() - started < 2
    assert_scrubbed(caught.value)


# --- pinning: the connection goes to the address that was checked -----------------------


async def test_fetch_connects_to_the_checked_address_and_resolves_once(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    # A rebinding DNS: a second lookup would send us to the metadata service.
    dns = FakeDns({HOST: ["127.0.0.1"]}, later={HOST: ["169.254.169.254"]})
    before = len(server.requests)
    async with await fetcher(client, dns).open("GET", url(server, "/small")) as response:
        assert response.status_code == 200
        assert await response.read() == b"hello"
    assert dns.calls == [HOST]
    assert len(server.requests) == before + 1  # exactly one upstream request


async def test_host_header_is_the_url_host(client: PinnedAsyncClient, server: FileServer) -> None:
    headers = {"Host": "evil.example.test", "X-Api-Key": "k"}
    body = await fetcher(client).read_limited(
        "GET", url(server, "/echo"), limit=10_000, headers=headers
    )
    seen = json.loads(body)
    assert seen["headers"]["host"] == f"{HOST}:{server.port}"
    assert seen["headers"]["x-api-key"] == "k"
    assert seen["headers"]["accept-encoding"] == "identity"


async def test_ip_literals_connect_when_private_addresses_are_allowed(
    client: PinnedAsyncClient, server: FileServer, server_v6: FileServer
) -> None:
    fetch = fetcher(client, no_dns)
    seen = json.loads(
        await fetch.read_limited("GET", f"http://127.0.0.1:{server.port}/echo", limit=9999)
    )
    assert seen["headers"]["host"] == f"127.0.0.1:{server.port}"
    seen = json.loads(
        await fetch.read_limited("GET", f"http://[::1]:{server_v6.port}/echo", limit=9999)
    )
    assert seen["headers"]["host"] == f"[::1]:{server_v6.port}"


async def test_name_with_an_ipv6_answer(client: PinnedAsyncClient, server_v6: FileServer) -> None:
    dns = FakeDns({HOST: ["::1"]})
    body = await fetcher(client, dns).read_limited("GET", url(server_v6, "/small"), limit=99)
    assert body == b"hello"


async def test_next_address_is_tried_when_the_first_refuses(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    dns = FakeDns({HOST: ["127.0.0.2", "127.0.0.1"]})  # nothing listens on 127.0.0.2
    body = await fetcher(client, dns).read_limited("GET", url(server, "/small"), limit=100)
    assert body == b"hello"


async def _get(client: PinnedAsyncClient, target: str) -> bytes:
    async with client.session.get(target) as response:
        return await response.read()


async def test_client_refuses_unpinned_connections(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    before = len(server.requests)
    # An IP literal (aiohttp skips the resolver: the socket factory refuses it) and a name.
    for target in (f"http://127.0.0.1:{server.port}/small", url(server, "/small")):
        with pytest.raises(aiohttp.ClientConnectorError):
            await _get(client, target)
    assert len(server.requests) == before


async def test_client_connects_only_where_the_pin_says(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    before = len(server.requests)
    wrong_pins = [
        ConnectionPin("other.example.test", server.port, ("127.0.0.1",)),  # another host
        ConnectionPin(HOST, server.port + 1, ("127.0.0.1",)),  # another port
        ConnectionPin(HOST, server.port, ()),  # nothing checked
    ]
    for pin in wrong_pins:
        with pinned(pin), pytest.raises(aiohttp.ClientConnectorError):
            await _get(client, url(server, "/small"))
    # IP literals: the address and the port must both be pinned.
    literal = f"http://127.0.0.1:{server.port}/small"
    for pin in (ConnectionPin("127.0.0.1", server.port, ("127.0.0.2",)),
                ConnectionPin("127.0.0.1", server.port + 1, ("127.0.0.1",))):
        with pinned(pin), pytest.raises(aiohttp.ClientConnectorError):
            await _get(client, literal)
    assert len(server.requests) == before
    # The pin reaches the connector (the context variable is seen where aiohttp
    # resolves and connects), also from a task started inside the block.
    with pinned(ConnectionPin(HOST, server.port, ("127.0.0.1",))):
        assert await _get(client, url(server, "/small")) == b"hello"
        assert await asyncio.create_task(_get(client, url(server, "/small"))) == b"hello"
    assert len(server.requests) == before + 2


async def test_no_dns_cache_outlives_a_pin(client: PinnedAsyncClient, server: FileServer) -> None:
    # /close ends each connection, so the second request must connect again: with the
    # second pin's address (nothing listens on 127.0.0.2), not a cached first answer.
    assert client.session.connector is not None
    with pinned(ConnectionPin(HOST, server.port, ("127.0.0.1",))):
        assert await _get(client, url(server, "/close")) == b"close"
    with (pinned(ConnectionPin(HOST, server.port, ("127.0.0.2",))),
          pytest.raises(aiohttp.ClientConnectorError)):
        await _get(client, url(server, "/close"))


async def test_each_hop_connects_where_its_own_check_said(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    # The name moves from 127.0.0.1 (the server) to 127.0.0.2 (nothing listens) between
    # two requests. /close ends the first connection, so the second must connect anew:
    # to what its own check returned, not to an address the client remembered.
    dns = FakeDns({HOST: ["127.0.0.1"]}, later={HOST: ["127.0.0.2"]})
    fetch = fetcher(client, dns)
    async with await fetch.open("GET", url(server, "/close")) as response:
        assert await response.read() == b"close"
    before = len(server.requests)
    with pytest.raises(UpstreamUnavailableError):
        await fetch.open("GET", url(server, "/close"))
    assert len(server.requests) == before
    assert dns.calls == [HOST, HOST]


async def test_fetcher_needs_a_pinned_client() -> None:
    policy = FetchPolicy(True, connect_timeout=1, read_timeout=1)
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(TypeError):
            SafeFetcher(plain, policy)  # type: ignore[arg-type]
    async with httpx.AsyncClient() as other:
        with pytest.raises(TypeError):
            SafeFetcher(other, policy)  # type: ignore[arg-type]


# --- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.example.test/latest/meta-data/",
        "http://[fe80::1]/",
        "file:///etc/passwd",
    ],
)
async def test_each_redirect_hop_is_checked(
    client: PinnedAsyncClient, server: FileServer, location: str
) -> None:
    dns = FakeDns({HOST: ["127.0.0.1"], "metadata.example.test": ["169.254.169.254"]})
    before = len(server.requests)
    target = url(server, "/redirect?" + httpx.QueryParams({"to": location}).__str__())
    with pytest.raises(UnsafeUrlError) as caught:
        await fetcher(client, dns).open("GET", target)
    assert len(server.requests) == before + 1  # only the first hop was sent
    assert_scrubbed(caught.value, "passwd", "meta-data")


async def test_redirect_to_another_name_resolves_it(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    dns = local_dns("other.example.test")
    target = url(server, "/redirect?to=" + url(server, "/small", "other.example.test"))
    async with await fetcher(client, dns).open("GET", target) as response:
        assert await response.read() == b"hello"
        assert response.url.host == "other.example.test"
    assert dns.calls == [HOST, "other.example.test"]


async def test_too_many_redirects_are_refused(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    before = len(server.requests)
    with pytest.raises(UnsafeUrlError) as caught:
        await fetcher(client, max_redirects=3).open("GET", url(server, "/chain/10"))
    assert len(server.requests) == before + 4
    assert_scrubbed(caught.value, "chain")
    body = await fetcher(client, max_redirects=3).read_limited(
        "GET", url(server, "/chain/3"), limit=100
    )
    assert body == b"end of chain"


async def test_relative_redirect(client: PinnedAsyncClient, server: FileServer) -> None:
    async with await fetcher(client).open("GET", url(server, "/dir/relative")) as response:
        assert response.status_code == 200
        assert response.url.path == "/small"
        assert await response.read() == b"hello"


@pytest.mark.parametrize(
    ("code", "method", "keeps_body"),
    [(303, "GET", False), (302, "GET", False), (301, "GET", False), (307, "POST", True),
     (308, "POST", True)],
)  # fmt: skip
async def test_redirect_method_rules_after_post(
    client: PinnedAsyncClient, server: FileServer, code: int, method: str, keeps_body: bool
) -> None:
    target = url(server, f"/redirect?code={code}&to=/echo")
    body = await fetcher(client).read_limited("POST", target, limit=10_000, json={"a": 1})
    seen = json.loads(body)
    assert seen["method"] == method
    assert (json.loads(seen["body"]) if keeps_body else seen["body"]) == (
        {"a": 1} if keeps_body else ""
    )
    assert ("content-type" in seen["headers"]) is keeps_body


@pytest.mark.parametrize(("host", "kept"), [(HOST, True), ("other.example.test", False)])
async def test_credentials_do_not_follow_a_cross_origin_redirect(
    client: PinnedAsyncClient, server: FileServer, host: str, kept: bool
) -> None:
    target = url(server, "/redirect?to=" + url(server, "/echo", host))
    body = await fetcher(client, local_dns("other.example.test")).read_limited(
        "GET", target, limit=10_000, headers={"Authorization": "Bearer t", "X-Other": "1"}
    )
    headers = json.loads(body)["headers"]
    assert ("authorization" in headers) is kept
    assert headers["x-other"] == "1"


# --- requests and bodies ---------------------------------------------------------------


async def test_post_json_and_params(client: PinnedAsyncClient, server: FileServer) -> None:
    body = await fetcher(client).read_limited(
        "post", url(server, "/echo?x=1"), limit=10_000, params={"y": "2"},
        json={"q": [1, 2], "name": "café"},
    )
    seen = json.loads(body)
    assert seen["method"] == "POST"
    assert seen["path"] == "/echo?x=1&y=2"
    assert seen["body"] == '{"q":[1,2],"name":"café"}'  # compact UTF-8, as before
    assert seen["headers"]["content-type"] == "application/json"


async def test_post_content_and_own_content_type(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    fetch = fetcher(client)
    seen = json.loads(await fetch.read_limited("POST", url(server, "/echo"), limit=10_000,
                                               content=b"raw body"))
    assert seen["body"] == "raw body"
    assert "content-type" not in seen["headers"]  # none invented
    assert seen["headers"]["content-length"] == "8"
    seen = json.loads(await fetch.read_limited(
        "POST", url(server, "/echo"), limit=10_000, json={"a": 1},
        headers={"Content-Type": "application/graphql+json"},
    ))
    assert seen["headers"]["content-type"] == "application/graphql+json"


async def test_query_is_sent_as_encoded(client: PinnedAsyncClient, server: FileServer) -> None:
    target = url(server, "/echo?a=%2F%20b&c=d%3De&e=%E2%9C%93")
    seen = json.loads(await fetcher(client).read_limited("GET", target, limit=10_000))
    assert seen["path"] == "/echo?a=%2F%20b&c=d%3De&e=%E2%9C%93"  # not re-quoted


async def test_cookies_are_not_kept_between_requests(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    fetch = fetcher(client)
    assert await fetch.read_limited("GET", url(server, "/cookie"), limit=99) == b"ok"
    seen = json.loads(await fetch.read_limited("GET", url(server, "/echo"), limit=10_000))
    assert "cookie" not in seen["headers"]


async def test_one_request_per_hop_even_when_the_server_drops_it(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    before = len(server.requests)
    with pytest.raises(UpstreamUnavailableError) as caught:
        await fetcher(client).open("GET", url(server, "/drop"))
    assert len(server.requests) == before + 1  # no silent retry
    assert caught.value.status == 502
    assert_scrubbed(caught.value, str(server.port))


async def test_an_encoded_body_is_decoded_and_capped_after_decoding(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    async with await fetcher(client).open("GET", url(server, "/gzip")) as response:
        assert response.headers["content-encoding"] == "gzip"
        assert await response.read() == BIG[:100_000]
    # The declared (encoded) length is under the cap; the decoded body is not.
    with pytest.raises(UpstreamTooLargeError):
        await fetcher(client).read_limited("GET", url(server, "/gzip"), limit=50_000)


async def test_range_is_passed_through(client: PinnedAsyncClient, server: FileServer) -> None:
    headers = {"Range": "bytes=100-199"}
    async with await fetcher(client).open("GET", url(server, "/big"), headers=headers) as response:
        assert response.status_code == 206
        assert response.headers["content-range"] == f"bytes 100-199/{len(BIG)}"
        assert await response.read() == BIG[100:200]


@pytest.mark.parametrize("chunk_size", [DEFAULT_CHUNK_SIZE, 100_000, 4096])
async def test_five_mib_stream_in_bounded_chunks(
    client: PinnedAsyncClient, server: FileServer, chunk_size: int
) -> None:
    digest = hashlib.sha256()
    sizes: list[int] = []
    response = await fetcher(client).open("GET", url(server, "/big"))
    async for chunk in response.iter_bytes(chunk_size):
        digest.update(chunk)
        sizes.append(len(chunk))
    assert digest.hexdigest() == hashlib.sha256(BIG).hexdigest()
    assert max(sizes) <= chunk_size
    assert len(sizes) < 2 * len(BIG) // chunk_size + 2  # chunks are coalesced, not tiny


@pytest.mark.parametrize("pieces", [False, True])
async def test_max_bytes_stops_a_stream_midway(
    client: PinnedAsyncClient, server: FileServer, pieces: bool
) -> None:
    received = 0
    response = await fetcher(client, max_bytes=300_000).open("GET", url(server, "/unbounded"))
    body = response.iter_pieces() if pieces else response.iter_bytes(65536)
    with pytest.raises(UpstreamTooLargeError) as caught:
        async for chunk in body:
            received += len(chunk)
    assert received <= 300_000
    assert caught.value.code == "upstream_too_large"
    assert_scrubbed(caught.value)


async def test_declared_length_over_the_cap_is_refused_before_reading(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    with pytest.raises(UpstreamTooLargeError):
        await fetcher(client, max_bytes=1024 * 1024).open("GET", url(server, "/big"))
    with pytest.raises(UpstreamTooLargeError):
        await fetcher(client).read_limited("GET", url(server, "/big"), limit=1000)
    head = await fetcher(client, max_bytes=10).open("HEAD", url(server, "/big"))
    assert head.status_code == 200
    await head.aclose()


async def test_read_limited_refuses_error_statuses(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    with pytest.raises(UpstreamUnavailableError) as caught:
        await fetcher(client).read_limited("GET", url(server, "/status/404"), limit=100)
    assert "404" in str(caught.value)
    async with await fetcher(client).open("GET", url(server, "/status/404")) as response:
        assert response.status_code == 404


# --- timeouts and failures ----------------------------------------------------------------


async def test_connect_timeout(client: PinnedAsyncClient, black_hole: int) -> None:
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError) as caught:
        await fetcher(client, connect_timeout=0.3).open("GET", f"http://{HOST}:{black_hole}/x")
    assert 0.25 < time.monotonic() - started < 2
    assert caught.value.status == 504
    assert_scrubbed(caught.value, str(black_hole))


async def test_read_timeout_waiting_for_headers(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError) as caught:
        await fetcher(client, read_timeout=0.3).open("GET", url(server, "/slow-headers"))
    assert time.monotonic() - started < 2
    assert_scrubbed(caught.value, str(server.port))


@pytest.mark.parametrize("pieces", [False, True])
async def test_read_timeout_mid_body(
    client: PinnedAsyncClient, server: FileServer, pieces: bool
) -> None:
    response = await fetcher(client, read_timeout=0.3).open("GET", url(server, "/slow-body"))
    assert response.status_code == 200
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError):
        if pieces:  # the relay's path times its own waits, not aiohttp's per-read timer
            async for _ in response.iter_pieces():
                pass
        else:
            await response.read()
    assert time.monotonic() - started < 5  # the stalled origin holds the body for 10 s


@pytest.mark.parametrize("read", ["bytes", "pieces", "read"])
async def test_total_timeout_ends_a_dripping_body(
    client: PinnedAsyncClient, server: FileServer, read: str
) -> None:
    """Each read beats the 2 s read timeout, but the whole body is bounded by 0.6 s."""
    started = time.monotonic()
    response = await fetcher(client, total_timeout=0.6).open("GET", url(server, "/drip"))
    got = 0
    with pytest.raises(UpstreamTimeoutError) as caught:
        if read == "read":
            await response.read()
        else:
            chunks = response.iter_bytes(1) if read == "bytes" else response.iter_pieces()
            async for chunk in chunks:
                got += len(chunk)
                await asyncio.sleep(0.05)  # a slow caller: the deadline holds across yields
    assert 0.55 < time.monotonic() - started < 1.5
    assert read == "read" or got >= 2  # bytes flowed until the deadline
    assert caught.value.code == "upstream_timeout"
    assert_scrubbed(caught.value, str(server.port))


async def test_a_bounded_body_left_early_is_released_at_once(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    response = await fetcher(client, total_timeout=5).open("GET", url(server, "/drip"))
    assert client.read_budget.streams == 1
    pieces = response.iter_pieces()
    assert await anext(pieces)
    await pieces.aclose()  # type: ignore[attr-defined]
    assert client.read_budget.streams == 0  # closed with the iterator, not when collected


async def test_total_timeout_bounds_the_wait_for_headers(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError):
        await fetcher(client, read_timeout=5, total_timeout=0.3).open(
            "GET", url(server, "/slow-headers"))
    assert time.monotonic() - started < 1.5


async def test_without_total_timeout_a_dripping_body_is_read(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    response = await fetcher(client, read_timeout=0.5).open("GET", url(server, "/drip"))
    got = 0
    async for chunk in response.iter_pieces():
        got += len(chunk)
        if got >= 12:  # 1.2 s: past any deadline above, and still no timeout
            break
    await response.aclose()
    assert got >= 12


async def test_connection_refused(client: PinnedAsyncClient) -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UpstreamUnavailableError) as caught:
        await fetcher(client).open("GET", f"http://{HOST}:{port}/x")
    assert caught.value.status == 502
    assert_scrubbed(caught.value, str(port))


async def test_nothing_sensitive_is_logged(
    client: PinnedAsyncClient, server: FileServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tidegate")
    fetch = fetcher(client, local_dns("other.example.test"))
    target = url(server, "/redirect?to=" + url(server, "/small?token=s3cret", "other.example.test"))
    await fetch.read_limited("GET", target, limit=100)
    for failing in ("http://169.254.169.254/x", "http://nowhere.example.test/?token=s3cret"):
        with pytest.raises(TidegateError):
            await fetch.open("GET", failing)
    records = [r for r in caplog.records if r.name.startswith("tidegate")]
    assert records
    for record in records:
        assert_scrubbed(record.getMessage(), "s3cret", str(server.port))


# --- TLS: SNI and certificate checks use the hostname, the socket the checked address ------


async def test_https_uses_the_hostname_for_sni_and_certificate(
    tls_server: FileServer, certificate: tuple[Path, Path]
) -> None:
    context = ssl.create_default_context(cafile=str(certificate[0]))
    async with PinnedAsyncClient(ssl_context=context) as tls_client:
        fetch = fetcher(tls_client, local_dns("other.example.test"))
        body = await fetch.read_limited("GET", url(tls_server, "/small", scheme="https"), limit=99)
        assert body == b"hello"
        assert tls_server.sni[-1] == HOST
        # Same address, a name the certificate does not cover: refused by the TLS check.
        wrong = url(tls_server, "/small", "other.example.test", scheme="https")
        with pytest.raises(UpstreamUnavailableError) as caught:
            await fetch.open("GET", wrong)
        assert "SSLCertVerificationError" in str(caught.value)
        assert_scrubbed(caught.value, str(tls_server.port))


# --- the SSRF matrix: every address class, as a literal and behind a DNS name -----------

ADDRESS_CLASSES = {
    "loopback": "127.0.0.1", "private-10": "10.1.2.3", "private-172": "172.16.5.4",
    "private-192": "192.168.1.1", "link-local/metadata": "169.254.169.254",
    "cgnat": "100.64.0.1", "unspecified": "0.0.0.0", "this-network": "0.1.2.3",
    "multicast": "224.0.0.1", "reserved": "240.0.0.1", "broadcast": "255.255.255.255",
    "benchmark": "198.18.0.1", "v6-loopback": "::1", "v6-ula": "fc00::1",
    "v6-link-local": "fe80::1", "v4-mapped": "::ffff:10.0.0.1", "nat64": "64:ff9b::a00:1",
}
# Forbidden even when private addresses are allowed (dev mode), so a redirect from a
# reachable test origin can prove each is refused after the first hop.
ALWAYS_FORBIDDEN = ["link-local/metadata", "unspecified", "this-network", "multicast",
                    "reserved", "broadcast", "v6-link-local"]


def _literal(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.mark.parametrize("kind", list(ADDRESS_CLASSES))
async def test_ssrf_matrix_literal_and_dns_name(client: PinnedAsyncClient, server: FileServer,
                                                kind: str) -> None:
    address = ADDRESS_CLASSES[kind]
    before = len(server.requests)
    with pytest.raises(UnsafeUrlError):
        await fetcher(client, no_dns, allow_private=False).open(
            "GET", f"http://{_literal(address)}:{server.port}/small")
    dns = FakeDns({"innocent.example.test": [address]})
    with pytest.raises(UnsafeUrlError) as caught:
        await fetcher(client, dns, allow_private=False).open(
            "GET", f"http://innocent.example.test:{server.port}/small")
    assert_scrubbed(caught.value, address, "innocent")
    assert len(server.requests) == before  # nothing was ever sent


@pytest.mark.parametrize("kind", ALWAYS_FORBIDDEN)
async def test_ssrf_matrix_redirect_into_each_class(client: PinnedAsyncClient,
                                                    server: FileServer, kind: str) -> None:
    address = ADDRESS_CLASSES[kind]
    dns = FakeDns({HOST: ["127.0.0.1"], "inner.example.test": [address]})
    for location in (f"http://{_literal(address)}/x", "http://inner.example.test/x"):
        before = len(server.requests)
        target = url(server, "/redirect?" + str(httpx.QueryParams({"to": location})))
        with pytest.raises(UnsafeUrlError):
            await fetcher(client, dns).open("GET", target)
        assert len(server.requests) == before + 1  # only the first, allowed hop


# --- back-pressure: a slow reader slows the upstream instead of filling memory -----------


class Firehose:
    """Serves one GET with a 64 MiB body as fast as the peer takes it, counting the bytes
    the kernel accepted. A small send buffer keeps the server side's own slack low."""

    SIZE = 64 * 1024 * 1024

    def __init__(self, send_buffer: int = 64 * 1024) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = int(self.listener.getsockname()[1])
        self.sent = 0
        self.ended: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError as exc:  # closed at teardown
            self.ended = exc
            self.done.set()
            return
        with conn:
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Content-Length: %d\r\n\r\n" % self.SIZE)
                block = b"\x5a" * 65536
                while self.sent < self.SIZE:
                    self.sent += conn.send(block[: self.SIZE - self.sent])
            except OSError as exc:  # the client went away
                self.ended = exc
            finally:
                self.done.set()

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


async def assert_dropped(firehose: Firehose) -> None:
    """We reset the connection early: the origin did not get to send the body."""
    assert await asyncio.to_thread(firehose.done.wait, 5)
    assert isinstance(firehose.ended, OSError)
    assert firehose.sent < firehose.SIZE // 2


@pytest.fixture
def firehose() -> Iterator[Firehose]:
    server = Firehose()
    yield server
    server.close()


async def test_a_slow_reader_applies_back_pressure(
    client: PinnedAsyncClient, firehose: Firehose
) -> None:
    # read_timeout well under the pause: a relay that is slow to read is not a slow upstream.
    fetch = fetcher(client, read_timeout=0.3)
    response = await fetch.open("GET", f"http://{HOST}:{firehose.port}/big")
    chunks = response.iter_bytes()
    first = await anext(chunks)
    assert len(first) == DEFAULT_CHUNK_SIZE
    await asyncio.sleep(1.0)  # the client stops reading; the upstream keeps pushing
    buffered = firehose.sent
    # Without back-pressure the whole 64 MiB would be in our memory by now. With it, only
    # aiohttp's small buffer plus the two kernel socket buffers hold bytes.
    assert buffered < 8 * 1024 * 1024, buffered
    assert not firehose.done.is_set()
    assert len(await anext(chunks)) == DEFAULT_CHUNK_SIZE  # reading resumes, no timeout
    # Closing early drops the connection without reading the rest of the body.
    started = time.monotonic()
    await chunks.aclose()  # type: ignore[attr-defined]
    await assert_dropped(firehose)
    assert time.monotonic() - started < 5


async def test_closing_an_unread_response_drops_the_connection(
    client: PinnedAsyncClient, firehose: Firehose
) -> None:
    async with await fetcher(client).open("GET", f"http://{HOST}:{firehose.port}/big") as resp:
        assert resp.status_code == 200
    await assert_dropped(firehose)


async def test_the_policy_chunk_size_is_the_default(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    response = await fetcher(client, chunk_size=20_000).open("GET", url(server, "/big"))
    sizes = [len(chunk) async for chunk in response.iter_bytes()]
    assert sum(sizes) == len(BIG)
    assert max(sizes) == 20_000 and all(size == 20_000 for size in sizes[:-1])


async def test_pieces_relay_the_body_as_it_arrives(
    client: PinnedAsyncClient, server: FileServer
) -> None:
    digest = hashlib.sha256()
    response = await fetcher(client).open("GET", url(server, "/big"))
    sizes = []
    async for piece in response.iter_pieces():
        digest.update(piece)
        sizes.append(len(piece))
    assert digest.hexdigest() == hashlib.sha256(BIG).hexdigest()
    assert max(sizes) <= MAX_READ  # one socket read at most: nothing is accumulated


async def test_closing_pieces_early_drops_the_connection(
    client: PinnedAsyncClient, firehose: Firehose
) -> None:
    response = await fetcher(client).open("GET", f"http://{HOST}:{firehose.port}/big")
    pieces = response.iter_pieces()
    assert await anext(pieces)
    await pieces.aclose()  # type: ignore[attr-defined]
    await assert_dropped(firehose)


async def test_a_slow_relay_is_not_a_read_timeout_on_the_pieces_path(
    client: PinnedAsyncClient, firehose: Firehose
) -> None:
    response = await fetcher(client, read_timeout=0.3).open(
        "GET", f"http://{HOST}:{firehose.port}/big")
    pieces = response.iter_pieces()
    assert await anext(pieces)
    await asyncio.sleep(1.0)  # the client stops reading for longer than the read timeout
    for _ in range(50):  # reading resumes: buffered bytes, then fresh ones, no timeout
        assert await anext(pieces)
    await pieces.aclose()  # type: ignore[attr-defined]
