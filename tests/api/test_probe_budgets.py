"""Unauthenticated probes cannot starve paid downloads (issue #16, "denial of service").

Against a real ``uvicorn`` serving the app and a real origin that drips one byte at a
time: fileinfo probes with ``checksum: true`` use their own connections, end at
``TIDEGATE_PROBE_TIMEOUT``, are capped per client address, and release their upstream
connection as soon as their client disconnects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import httpx

from tests.api.access_helpers import download_params, order
from tests.api.server_helpers import serving
from tests.chain_fixtures import ORIGIN_FILES, ChainHarness, wait_for_ddo
from tests.conftest import base_env
from tidegate.app import create_app
from tidegate.settings import Settings

FILEINFO = "/api/services/fileinfo"


class DrippingOrigin:
    """An HTTP origin that answers at once, then sends its body one byte per ``interval``.

    ``open`` counts the connections it holds now, ``seen`` all it ever accepted.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.open = 0
        self.seen = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/slow.bin"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.seen += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: 100000\r\n\r\n")
            while True:
                writer.write(b"x")
                await writer.drain()
                # A read that ends means the peer closed the connection.
                with suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(1), self.interval) == b"":
                        return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self.open -= 1
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[DrippingOrigin]:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self._server.close()


async def _until(check: Callable[[], bool], wait: float) -> float:
    """Seconds until ``check()`` holds (fails after ``wait``)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < wait, "condition not reached in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def _probe(client: httpx.AsyncClient, url: str) -> asyncio.Task[httpx.Response]:
    return asyncio.ensure_future(client.post(FILEINFO, json={
        "type": "url", "url": url, "method": "GET", "checksum": True}))


async def test_each_purpose_has_its_own_pool(tmp_path: Path) -> None:
    settings = Settings.from_env(base_env(
        tmp_path, TIDEGATE_DOWNLOAD_CONNECTIONS="7", TIDEGATE_PROBE_CONNECTIONS="3",
        TIDEGATE_PROBE_TIMEOUT="4.5"))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        svc = app.state.services
        downloads, probes = svc.storage.fetcher, svc.probe_storage.fetcher
        assert svc.fetcher is downloads and downloads.client is not probes.client
        assert (downloads.client.limit, probes.client.limit) == (7, 3)
        assert (downloads.policy.total_timeout, probes.policy.total_timeout) == (None, 4.5)
        # One read budget for all of them: their streams share its memory.
        assert downloads.client.read_budget is probes.client.read_budget
        assert svc.probe_slots.per_client == 4


async def test_probe_flood_does_not_starve_a_paid_download(
    harness: ChainHarness, chain_settings: Callable[..., Settings]
) -> None:
    settings = chain_settings(
        TIDEGATE_PROBE_CONNECTIONS="4", TIDEGATE_DOWNLOAD_CONNECTIONS="2",
        TIDEGATE_PROBE_TIMEOUT="3", TIDEGATE_PROBES_PER_CLIENT="0",
        TIDEGATE_CONNECT_TIMEOUT="1", TIDEGATE_READ_TIMEOUT="10")
    asset = harness.publish(files=[{"type": "url", "url": harness.origin + "/data.csv"}])
    harness.give_datatokens(asset)
    async with DrippingOrigin(interval=0.5).running() as origin, serving(settings) as base, \
            httpx.AsyncClient(base_url=base, timeout=30,
                              limits=httpx.Limits(max_connections=100)) as attacker, \
            httpx.AsyncClient(base_url=base, timeout=30) as consumer:
        await wait_for_ddo(consumer, asset.did)
        tx = await order(consumer, harness, asset)
        started = time.monotonic()
        probes = [_probe(attacker, origin.url) for _ in range(40)]
        # Every probe connection is taken, and held: the origin never stops dripping.
        await _until(lambda: origin.open == 4, 5)

        t0 = time.monotonic()
        r = await consumer.get("/api/services/download", params=download_params(asset, tx))
        download_seconds = time.monotonic() - t0
        assert r.status_code == 200, r.text
        assert r.content == ORIGIN_FILES["data.csv"]
        assert download_seconds < 1.0, download_seconds
        assert origin.open == 4  # the probes still held theirs meanwhile

        # Each probe ends by its total limit (3 s), whatever the per-read timeout (10 s):
        # the first four hold a connection that long, the rest wait for one no longer.
        answers = await asyncio.gather(*probes)
        elapsed = time.monotonic() - started
        assert elapsed < 3 + 2.0, elapsed
        for answer in answers:
            assert answer.status_code == 200, answer.text
            [entry] = answer.json()
            assert (entry["index"], entry["valid"], entry["type"]) == (0, False, "url")
            assert entry.get("reason", "timeout") == "timeout"  # where reasons are given
        # After the attack, nothing stays held: the origin's connections were dropped.
        await _until(lambda: origin.open == 0, 2)
        assert origin.seen == 4


async def test_probes_are_capped_per_client_and_released_on_disconnect(
    harness: ChainHarness, chain_settings: Callable[..., Settings]
) -> None:
    settings = chain_settings(TIDEGATE_PROBES_PER_CLIENT="2", TIDEGATE_PROBE_TIMEOUT="60")
    # Another client address: loopback is all of 127.0.0.0/8.
    other_address = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with DrippingOrigin(interval=0.5).running() as origin, serving(settings) as base, \
            httpx.AsyncClient(base_url=base, timeout=30, transport=other_address) as other:
        attacker = httpx.AsyncClient(base_url=base, timeout=30)
        probes = [_probe(attacker, origin.url) for _ in range(2)]
        await _until(lambda: origin.open == 2, 5)
        # A third from the same address is refused at once, and opens no connection.
        r = await attacker.post(FILEINFO, json={"type": "url", "url": origin.url,
                                                "checksum": True})
        assert (r.status_code, r.json()["code"]) == (429, "too_many_probes")
        assert r.headers["retry-after"] == "1"
        assert origin.seen == 2
        # Another address still gets its probes.
        third = _probe(other, origin.url)
        await _until(lambda: origin.open == 3, 5)

        # The attacker leaves: its probes are cancelled and their connections closed,
        # long before their 60 s limit.
        await attacker.aclose()
        for probe in probes:
            probe.cancel()
        await _until(lambda: origin.open == 1, 3)
        third.cancel()
        await other.aclose()
        await _until(lambda: origin.open == 0, 3)

        # Its slots are free again.
        async with httpx.AsyncClient(base_url=base, timeout=30) as back:
            again = [_probe(back, origin.url) for _ in range(2)]
            await _until(lambda: origin.open == 2, 5)
            for probe in again:
                probe.cancel()
            await asyncio.gather(*again, return_exceptions=True)
        await _until(lambda: origin.open == 0, 3)
        with suppress(asyncio.CancelledError):
            await asyncio.gather(*probes, third, return_exceptions=True)
