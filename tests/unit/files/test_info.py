"""file_info against a real local origin: one request, lengths, checksums, invalid files."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.chain_fixtures import ChainHarness
from tests.helpers import PROVIDER_ADDRESS
from tests.local_http import LocalServer, QuietHandler, local_fetcher

from tidegate.chain.clients import ChainConfig, Chains
from tidegate.chain.contracts import load_artifact
from tidegate.errors import ServiceUnavailableError, TidegateError
from tidegate.files.info import content_length, file_info
from tidegate.files.objects import GatewayNotConfiguredError, StorageContext, parse_file_object
from tidegate.files.reasons import (
    REASONS,
    reason_for_call_error,
    reason_for_error,
    reason_for_status,
)
from tidegate.files.safe_fetch import (
    FetchPolicy,
    PinnedAsyncClient,
    SafeFetcher,
    UnsafeUrlError,
    UpstreamTimeoutError,
    UpstreamTooLargeError,
    UpstreamUnavailableError,
)

CSV = b"a,b\n1,2\n3,4\n"
BODY_1K = bytes(range(256)) * 4
MAX = 1000  # max_checksum_length in these tests


class Origin(LocalServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.requests: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()  # body bytes written per path


class _Handler(QuietHandler):
    server: Origin

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._route()

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _write(self, path: str, data: bytes, chunked: bool = False) -> None:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            self.server.sent[path] += len(data)
        except OSError:
            self.close_connection = True
            raise

    def _route(self) -> None:
        path = urlsplit(self.path).path
        self.server.requests[path] += 1
        try:
            self._serve(path)
        except OSError:
            self.close_connection = True  # the client went away: expected for big bodies

    def _serve(self, path: str) -> None:
        if path.endswith("/data.csv"):
            self._head(200, {"Content-Type": "text/csv; charset=utf-8",
                             "Content-Length": str(len(CSV))})
            self._write(path, CSV)
        elif path in ("/chunked.bin", "/big-chunked.bin"):
            total = len(BODY_1K) * (1 if path == "/chunked.bin" else 200 * 1024)  # 200 MiB
            self._head(200, {"Content-Type": "application/octet-stream",
                             "Transfer-Encoding": "chunked"})
            for _ in range(total // len(BODY_1K)):
                self._write(path, BODY_1K, chunked=True)
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/big-declared.bin":
            size = 100 * 1024 * 1024
            self._head(200, {"Content-Type": "application/octet-stream",
                             "Content-Length": str(size)})
            for _ in range(size // len(BODY_1K)):
                self._write(path, BODY_1K)
        elif path == "/ranged":
            self._head(206, {"Content-Range": "bytes 0-99/1234", "Transfer-Encoding": "chunked"})
            self._write(path, b"x" * 100, chunked=True)
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/post-only" and self.command == "POST":
            self._head(200, {"Content-Type": "application/json", "Content-Length": "2"})
            self._write(path, b"{}")
        elif path == "/redirect":
            self._head(302, {"Location": "/data.csv", "Content-Length": "0"})
        elif path in ("/", "/nothing-known"):
            self._head(200, {"Transfer-Encoding": "chunked"})
            self.wfile.write(b"0\r\n\r\n")
        else:
            page = b"<html>error page</html>"
            self._head(404 if path != "/post-only" else 405,
                       {"Content-Type": "text/html", "Content-Length": str(len(page))})
            self._write(path, page)


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin().running() as server:
        yield server


async def _ctx(allow_private: bool = True) -> tuple[StorageContext, PinnedAsyncClient]:
    fetcher, client = local_fetcher(allow_private)
    return StorageContext(None, None, Chains({}), fetcher, MAX), client


@pytest.fixture
async def ctx() -> AsyncIterator[StorageContext]:
    context, client = await _ctx()
    async with client:
        yield context


async def info(ctx: StorageContext, raw: dict[str, Any], checksum: bool = False,
               index: int = 0) -> dict[str, Any]:
    return await file_info(parse_file_object(raw), ctx, index, checksum)


async def test_valid_url_without_and_with_checksum(origin: Origin, ctx: StorageContext) -> None:
    raw = {"type": "url", "url": origin.url + "/data.csv"}
    expected = {"index": 3, "valid": True, "type": "url", "contentLength": str(len(CSV)),
                "contentType": "text/csv", "filename": "data.csv"}
    assert await info(ctx, raw, index=3) == expected
    assert await info(ctx, raw, checksum=True, index=3) == {
        **expected, "checksum": hashlib.sha256(CSV).hexdigest(), "checksumType": "sha256"}
    assert origin.requests["/data.csv"] == 2  # one request per call, no HEAD/OPTIONS probes


async def test_checksum_limit(origin: Origin, ctx: StorageContext) -> None:
    raw = {"type": "url", "url": origin.url + "/data.csv"}
    at_limit = StorageContext(None, None, ctx.chains, ctx.fetcher, len(CSV))
    assert "checksum" in await info(at_limit, raw, checksum=True)
    below = StorageContext(None, None, ctx.chains, ctx.fetcher, len(CSV) - 1)
    result = await info(below, raw, checksum=True)
    assert result["valid"] and "checksum" not in result and "checksumType" not in result
    assert result["contentLength"] == str(len(CSV))


async def test_chunked_answer(origin: Origin, ctx: StorageContext) -> None:
    raw = {"type": "url", "url": origin.url + "/chunked.bin"}
    plain = await info(ctx, raw)
    assert (plain["valid"], plain["contentLength"]) == (True, "")  # unknown without hashing
    assert plain["contentType"] == "application/octet-stream"
    hashed = await info(StorageContext(None, None, ctx.chains, ctx.fetcher, 4096), raw,
                        checksum=True)
    assert hashed["contentLength"] == str(len(BODY_1K))  # counted while hashing
    assert hashed["checksum"] == hashlib.sha256(BODY_1K).hexdigest()


async def test_checksum_never_reads_a_big_body(origin: Origin, ctx: StorageContext) -> None:
    started = time.monotonic()
    result = await info(ctx, {"type": "url", "url": origin.url + "/big-chunked.bin"},
                        checksum=True)
    assert result["valid"] and "checksum" not in result and result["contentLength"] == ""
    declared = await info(ctx, {"type": "url", "url": origin.url + "/big-declared.bin"},
                          checksum=True)
    assert declared["contentLength"] == str(100 * 1024 * 1024) and "checksum" not in declared
    assert time.monotonic() - started < 10
    # The server could only push what fits in socket buffers before we hung up.
    for path in ("/big-chunked.bin", "/big-declared.bin"):
        assert origin.sent[path] < 32 * 1024 * 1024, path


async def test_content_range_gives_the_total(origin: Origin, ctx: StorageContext) -> None:
    result = await info(ctx, {"type": "url", "url": origin.url + "/ranged",
                              "headers": {"Range": "bytes=0-99"}})
    assert (result["valid"], result["contentLength"]) == (True, "1234")


@pytest.mark.parametrize(("headers", "expected"), [
    ({"content-length": "12"}, "12"),
    ({"content-length": "12", "content-encoding": "gzip"}, ""),
    ({"content-range": "bytes 0-99/1234"}, "1234"),
    ({"content-range": "bytes */1234"}, "1234"),
    ({"content-range": "bytes 0-99/*"}, ""),
    ({"content-length": "abc"}, ""),
    ({"content-length": "²"}, ""),  # an origin's header: isdigit() says yes, int() no
    ({"content-length": "9" * 5000}, ""),
    ({}, ""),
])
def test_content_length(headers: dict[str, str], expected: str) -> None:
    assert content_length(headers) == expected


async def test_probe_uses_the_files_method(origin: Origin, ctx: StorageContext) -> None:
    post = await info(ctx, {"type": "url", "url": origin.url + "/post-only", "method": "post"})
    assert (post["valid"], post["contentLength"], post["filename"]) == (True, "2", "post-only")
    get = await info(ctx, {"type": "url", "url": origin.url + "/post-only"})
    assert get == {"index": 0, "valid": False, "type": "url", "reason": "bad_status",
                   "status": 405}


async def test_redirect_names_the_final_file(origin: Origin, ctx: StorageContext) -> None:
    result = await info(ctx, {"type": "url", "url": origin.url + "/redirect"})
    assert (result["valid"], result["filename"]) == (True, "data.csv")


async def test_invalid_answers(origin: Origin, ctx: StorageContext) -> None:
    result = await info(ctx, {"type": "url", "url": origin.url + "/missing.csv"},
                        checksum=True, index=1)
    assert result == {"index": 1, "valid": False, "type": "url", "reason": "not_found",
                      "status": 404}
    # Nothing known (no type, no length, no name): invalid, as the reference.
    assert await info(ctx, {"type": "url", "url": origin.url + "/"}) == {
        "index": 0, "valid": False, "type": "url", "reason": "no_details"}
    # A name is enough; an empty file hashed has a known length.
    named = await info(ctx, {"type": "url", "url": origin.url + "/nothing-known"},
                       checksum=True)
    assert (named["valid"], named["contentLength"], named["filename"]) == (
        True, "0", "nothing-known")
    assert named["checksum"] == hashlib.sha256(b"").hexdigest()


async def test_unreachable_and_refused(origin: Origin, ctx: StorageContext,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/x.csv"
    assert await info(ctx, {"type": "url", "url": closed}) == {
        "index": 0, "valid": False, "type": "url", "reason": "unreachable"}
    assert await info(ctx, {"type": "url", "url": "data.csv"}) == {
        "index": 0, "valid": False, "type": "url", "reason": "invalid_url"}
    strict, client = await _ctx(allow_private=False)
    async with client:
        refused = await info(strict, {"type": "url", "url": origin.url + "/data.csv"})
    assert refused == {"index": 0, "valid": False, "type": "url", "reason": "refused_address"}
    assert origin.requests["/data.csv"] == 0  # refused before connecting
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("tidegate"))
    assert "fileinfo: url file 0 unreachable" in ours
    assert "127.0.0.1" not in ours and "data.csv" not in ours


async def test_ipfs_arweave_graphql(origin: Origin, ctx: StorageContext) -> None:
    gateways = StorageContext(origin.url, origin.url, ctx.chains, ctx.fetcher, MAX)
    # The local gateway has no such CID: 404, invalid; the reported type is kept.
    assert await info(gateways, {"type": "ipfs", "hash": "QmNope"}) == {
        "index": 0, "valid": False, "type": "ipfs", "reason": "not_found", "status": 404}
    arweave = await info(gateways, {"type": "arweave", "transactionId": "tx-1/data.csv"})
    assert (arweave["valid"], arweave["filename"], arweave["contentType"]) == (
        True, "", "text/csv")
    graphql = await info(ctx, {"type": "graphql", "url": origin.url + "/post-only",
                               "query": "{ a }"})
    assert (graphql["valid"], graphql["type"], graphql["contentType"]) == (
        True, "graphql", "application/json")
    with pytest.raises(GatewayNotConfiguredError):
        await info(ctx, {"type": "ipfs", "hash": "QmA"})


async def test_smartcontract_info(harness: ChainHarness, ctx: StorageContext,
                                  chain_config: ChainConfig) -> None:
    chain = chain_config
    chained = StorageContext(None, None, Chains({chain.chain_id: chain}), ctx.fetcher, MAX)
    abi = next(item for item in load_artifact("OceanToken").abi if item.get("name") == "symbol")
    raw = {"type": "smartcontract", "chainId": chain.chain_id,
           "address": harness.addresses["Ocean"], "abi": dict(abi)}
    result = await info(chained, raw, checksum=True)
    reverted = await info(chained, {**raw, "address": PROVIDER_ADDRESS})
    content = json.dumps("OCEAN").encode()
    assert result == {"index": 0, "valid": True, "type": "smartcontract",
                      "contentLength": len(content), "contentType": "application/json",
                      "filename": "", "checksum": hashlib.sha256(content).hexdigest(),
                      "checksumType": "sha256"}
    assert reverted == {"index": 0, "valid": False, "type": "smartcontract",
                        "reason": "call_failed"}


async def test_a_file_over_the_fetchers_cap_is_too_large(origin: Origin) -> None:
    """The app sets no cap on fileinfo today; a fetcher with one (``max_bytes``) refuses a
    declared length above it before reading, and fileinfo says ``too_large``."""
    client = PinnedAsyncClient()
    policy = FetchPolicy(allow_private_addresses=True, connect_timeout=2, read_timeout=5,
                         max_bytes=1024 * 1024)
    capped = StorageContext(None, None, Chains({}), SafeFetcher(client, policy), MAX)
    async with client:
        result = await info(capped, {"type": "url", "url": origin.url + "/big-declared.bin"})
    assert result == {"index": 0, "valid": False, "type": "url", "reason": "too_large"}


def test_every_reason_given_is_listed() -> None:
    errors = [UnsafeUrlError("x"), UnsafeUrlError("x", reason="refused_address"),
              UnsafeUrlError("x", reason="not-a-listed-reason"), UpstreamTimeoutError("x"),
              UpstreamTooLargeError("x"), UpstreamUnavailableError("x"), TidegateError("x")]
    given = [reason_for_error(e) for e in errors]
    assert given == ["invalid_url", "refused_address", "invalid_url", "timeout", "too_large",
                     "unreachable", "unreachable"]
    given += [reason_for_status(s) for s in (404, 410, 401, 403, 500, 302)]
    given += [reason_for_call_error(e) for e in (ServiceUnavailableError("x"),
                                                 TidegateError("x"))]
    assert set(given) <= set(REASONS)
    assert {reason_for_call_error(ServiceUnavailableError("x")),
            reason_for_status(302)} == {"chain_unavailable", "bad_status"}
