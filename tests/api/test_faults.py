"""Fault injection on a real server: origins that die, lie or stall in the middle of a
download, and a chain RPC that goes away and comes back (#16 item 6).

A consumer must never receive a complete-looking 200 for a truncated file: once the
status line has gone out, the only honest signal left is an aborted response (the
connection closes before the announced length, or before the last chunk).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.api.access_helpers import download_params, order
from tests.api.server_helpers import serving
from tests.chain_fixtures import ChainHarness, wait_for_ddo
from tests.faults import CuttableProxy
from tests.local_http import LocalServer, QuietHandler

DOWNLOAD = "/api/services/download"
SENT = 64 * 1024  # what a broken origin sends before it fails
ANNOUNCED = 1024 * 1024


class BrokenOrigin(LocalServer):
    """An origin whose files break in the ways real ones do."""

    def __init__(self) -> None:
        super().__init__(BrokenHandler)
        self.release = threading.Event()  # ends the stalled answers at teardown


class BrokenHandler(QuietHandler):
    server: BrokenOrigin

    def do_GET(self) -> None:
        if self.path == "/dies":  # announces 1 MiB, sends 64 KiB, the process dies
            self._start({"Content-Length": str(ANNOUNCED)})
            self.wfile.write(b"d" * SENT)
            self._abort()
        elif self.path == "/lies":  # announces 1 MiB, sends 64 KiB, closes cleanly
            self._start({"Content-Length": str(ANNOUNCED)})
            self.wfile.write(b"l" * SENT)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_WR)
        elif self.path == "/chunked-dies":  # chunked, no last chunk
            self._start({"Transfer-Encoding": "chunked"})
            self.wfile.write(b"%x\r\n%s\r\n" % (SENT, b"c" * SENT))
            self._abort()
        elif self.path == "/stalls":  # announces 1 MiB, sends 64 KiB, then nothing
            self._start({"Content-Length": str(ANNOUNCED)})
            self.wfile.write(b"s" * SENT)
            self.wfile.flush()
            self.server.release.wait(30)
            self.close_connection = True
        else:
            self.send_error(404)

    def _start(self, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _abort(self) -> None:
        """Reset the connection (SO_LINGER 0): what a crashed origin looks like."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.close_connection = True
        self.connection.close()


@pytest.fixture
def broken_origin() -> Iterator[BrokenOrigin]:
    origin = BrokenOrigin()
    with origin.running():
        yield origin
        origin.release.set()


@pytest.fixture
async def server(chain_settings) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    # A short read timeout, so that the stalled origin is given up on within the test.
    async with serving(chain_settings(TIDEGATE_READ_TIMEOUT="1")) as url:
        yield url


async def _download(client: httpx.AsyncClient, params: dict[str, str]) -> tuple[int, int]:
    """Stream a download to its end; (status, bytes received). Raises if it is aborted."""
    async with client.stream("GET", DOWNLOAD, params=params) as response:
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
        return response.status_code, received


@pytest.mark.parametrize("path", ["/dies", "/lies", "/chunked-dies", "/stalls"])
async def test_a_broken_origin_aborts_the_download(
        harness: ChainHarness, broken_origin: BrokenOrigin, server: str, path: str) -> None:
    asset = harness.publish(files=[{"type": "url", "url": broken_origin.url + path}])
    harness.give_datatokens(asset)
    async with httpx.AsyncClient(base_url=server, timeout=20) as client:
        tx = await order(client, harness, asset)
        started = time.monotonic()
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            status, received = await _download(client, download_params(asset, tx))
            # Reaching this line means a finished response: say what it was.
            pytest.fail(f"a complete-looking {status} with {received} bytes")
        # The stalled origin is given up on at the read timeout (1 s), not after minutes.
        assert time.monotonic() - started < 10
        # The server is fine afterwards, and the consumer may try again.
        assert (await client.get("/api/services/nonce",
                                 params={"userAddress": harness.consumer.address})
                ).status_code == 200


async def test_chain_rpc_down_is_a_fast_503_and_recovers_without_restart(
        harness: ChainHarness, chain_settings) -> None:  # type: ignore[no-untyped-def]
    rpc = httpx.URL(harness.rpc.url)
    proxy = CuttableProxy(rpc.host, rpc.port or 80)
    await proxy.start()
    try:
        settings = chain_settings(NETWORK_URL=f"http://127.0.0.1:{proxy.port}")
        async with serving(settings) as url, \
                httpx.AsyncClient(base_url=url, timeout=30) as client:
            asset = harness.publish(files=[{"type": "url",
                                            "url": harness.origin + "/data.csv"}])
            harness.give_datatokens(asset)
            await wait_for_ddo(client, asset.did)
            tx = await order(client, harness, asset)
            assert (await client.get("/health/ready")).status_code == 200

            await proxy.cut()
            started = time.monotonic()
            r = await client.get(DOWNLOAD, params=download_params(asset, tx))
            assert r.status_code == 503, r.text
            assert r.json()["error"] and r.json()["code"]
            assert str(proxy.port) not in r.text  # the RPC's address is not revealed
            assert time.monotonic() - started < 10
            ready = await client.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["chains"] == {"8996": "unavailable"}

            await proxy.restore()
            r = await client.get(DOWNLOAD, params=download_params(asset, tx))
            assert r.status_code == 200, r.text
            assert (await client.get("/health/ready")).status_code == 200
    finally:
        await proxy.close()
