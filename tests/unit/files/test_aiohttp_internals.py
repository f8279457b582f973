"""Canaries for the aiohttp internals the relay relies on (files/aiohttp_internals.py).

Each test names the item of that module's docstring it guards. A failure after an
aiohttp upgrade means the item must be re-done for the new version (or dropped, if
aiohttp now offers it publicly) before the upgrade can land.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tidegate.files.aiohttp_internals import (
    BudgetedReads,
    NotResentError,
    refuse_resend,
    stop_read_timer,
    use_budgeted_reads,
)
from tidegate.files.read_budget import MAX_READ, ReadBudget
from tidegate.files.safe_fetch import (
    FetchPolicy,
    PinnedAsyncClient,
    SafeFetcher,
    UpstreamUnavailableError,
)

VERSION = f"aiohttp {aiohttp.__version__}"
BODY = os.urandom(16 * 1024 * 1024 + 17)


def _changed(item: str, what: str) -> str:
    return f"{VERSION}: aiohttp_internals item {item} no longer holds: {what}"


# --- item 1: ResponseHandler and BaseConnector._factory ------------------------------


def test_response_handler_is_importable_with_the_interface_we_forward() -> None:
    try:
        from aiohttp.client_proto import ResponseHandler
    except ImportError as exc:  # pragma: no cover - only on a breaking upgrade
        pytest.fail(_changed("1", f"aiohttp.client_proto.ResponseHandler: {exc}"))
    assert issubclass(ResponseHandler, asyncio.Protocol), _changed("1", "not a Protocol")
    assert "loop" in inspect.signature(ResponseHandler).parameters, _changed(
        "1", "ResponseHandler(loop=...) is not its constructor")
    for name in ("connection_made", "connection_lost", "pause_writing", "resume_writing",
                 "eof_received", "data_received"):
        assert callable(getattr(ResponseHandler, name, None)), _changed(
            "1", f"ResponseHandler.{name} is gone")


async def test_the_connector_builds_its_protocols_with_factory() -> None:
    from aiohttp.client_proto import ResponseHandler

    connector = aiohttp.TCPConnector()
    try:
        factory = getattr(connector, "_factory", None)
        assert isinstance(factory, functools.partial), _changed(
            "1", f"TCPConnector._factory is {factory!r}, not a functools.partial")
        assert factory.func is ResponseHandler, _changed(
            "1", "TCPConnector._factory no longer builds ResponseHandler")
        use_budgeted_reads(connector, ReadBudget(MAX_READ))
        assert isinstance(connector._factory(), BudgetedReads)
    finally:
        await connector.close()


# --- item 2: ResponseHandler.read_timeout ---------------------------------------------


def test_read_timeout_is_a_settable_property() -> None:
    from aiohttp.client_proto import ResponseHandler

    prop = inspect.getattr_static(ResponseHandler, "read_timeout", None)
    assert isinstance(prop, property) and prop.fset is not None, _changed(
        "2", "ResponseHandler.read_timeout is not a settable property")


# --- a real round trip through a local aiohttp server ---------------------------------


async def _body(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Length": str(len(BODY))})
    await response.prepare(request)
    for start in range(0, len(BODY), 256 * 1024):
        await response.write(BODY[start:start + 256 * 1024])
    await response.write_eof()
    return response


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/body", _body)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _fetcher(client: PinnedAsyncClient) -> SafeFetcher:
    return SafeFetcher(client, FetchPolicy(True, connect_timeout=2, read_timeout=5))


class _TimerCount:
    """Counts ``loop.call_later`` (aiohttp's read timer; asyncio.timeout uses call_at)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.calls = 0
        self._loop = loop
        self._original: Callable[..., asyncio.TimerHandle] = loop.call_later

    def __enter__(self) -> _TimerCount:
        def counting(*args: Any, **kwargs: Any) -> asyncio.TimerHandle:
            self.calls += 1
            return self._original(*args, **kwargs)
        self._loop.call_later = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self._loop.call_later  # back to the class's method


async def test_round_trip_reads_through_the_budget_with_the_timer_off(origin: str) -> None:
    async with PinnedAsyncClient() as client:
        response = await _fetcher(client).open("GET", origin + "/body")
        connection = response._response.connection
        protocol = connection.protocol if connection is not None else None
        assert isinstance(protocol, BudgetedReads), _changed(
            "1", "the connection's protocol is not the one _factory built")
        received = bytearray()
        pieces = response.iter_pieces()
        with _TimerCount(asyncio.get_running_loop()) as timers:
            async for piece in pieces:
                assert len(piece) <= MAX_READ
                received += piece
                await asyncio.sleep(0)
                if len(received) >= len(BODY) // 2:
                    break
            # Once the body started, aiohttp's protocol holds no read timeout...
            assert protocol.read_timeout is None, _changed(
                "2", "setting read_timeout did not stick")
            half = timers.calls
            async for piece in pieces:
                received += piece
                await asyncio.sleep(0)
        assert bytes(received) == BODY
        # ...and no timer was armed per socket read (a handful at most, for other work).
        assert half <= 2 and timers.calls <= 4, _changed(
            "2", f"aiohttp still arms a timer per read ({timers.calls} call_later)")


async def test_without_the_switch_aiohttp_arms_a_timer_per_read(origin: str) -> None:
    # The control for the test above: what stop_read_timer saves still exists.
    async with PinnedAsyncClient() as client:
        response = await _fetcher(client).open("GET", origin + "/body")
        with _TimerCount(asyncio.get_running_loop()) as timers:
            reads = 0
            async for _ in response.iter_bytes(64 * 1024):
                reads += 1
                await asyncio.sleep(0)
        assert timers.calls >= 5, (
            f"{VERSION} no longer re-arms its read timer per socket read: "
            "aiohttp_internals item 2 (stop_read_timer) may be unnecessary now")


async def test_stop_read_timer_tolerates_a_released_response(origin: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(origin + "/body") as response:
        await response.read()
        stop_read_timer(response)  # connection already back in the pool: nothing to do


# --- item 3: one attempt per request -------------------------------------------------


@pytest.fixture
async def dropper() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server that reads each request head and closes the connection unanswered."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(head)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
        await server.wait_closed()


async def test_aiohttp_still_resends_on_a_dropped_connection(
    dropper: tuple[str, list[bytes]],
) -> None:
    # The control: without refuse_resend aiohttp sends the GET twice. If it sends it
    # once, aiohttp stopped resending and item 3 may be unnecessary.
    base, seen = dropper
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await session.get(base + "/x")
    assert len(seen) == 2, f"{VERSION} sent the request {len(seen)} time(s), not twice"


async def test_refuse_resend_makes_it_one_attempt(dropper: tuple[str, list[bytes]]) -> None:
    base, seen = dropper
    async with aiohttp.ClientSession(middlewares=(refuse_resend,)) as session:
        with pytest.raises(NotResentError) as caught:
            await session.get(base + "/x")
    assert len(seen) == 1, _changed("3", f"the request was sent {len(seen)} times")
    assert isinstance(caught.value.__cause__, aiohttp.ServerDisconnectedError)


async def test_the_fetcher_sends_one_request_to_a_dropping_server(
    dropper: tuple[str, list[bytes]],
) -> None:
    base, seen = dropper
    async with PinnedAsyncClient() as client:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await _fetcher(client).open("GET", base + "/x")
    assert len(seen) == 1, _changed("3", f"the fetcher sent {len(seen)} requests")
    assert "ServerDisconnectedError" in str(caught.value)


async def test_connect_failures_pass_through_refuse_resend() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()  # nothing listens there now: connection refused
    async with aiohttp.ClientSession(middlewares=(refuse_resend,)) as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get(f"http://127.0.0.1:{port}/")
