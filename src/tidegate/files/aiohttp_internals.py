"""Every use of aiohttp's private or internal API, in one place.

The download relay (:mod:`tidegate.files.safe_fetch`, :mod:`tidegate.files.address_policy`)
uses aiohttp's public API except for what is here. Each item says what it touches and
what it bought (figures from bench/README.md, "Download relay"). The canary tests in
``tests/unit/files/test_aiohttp_internals.py`` fail, naming the item, when an aiohttp
upgrade removes or changes one of them: run them first after any aiohttp upgrade.

Known to work with aiohttp 3.14.5 (the version pyproject.toml pins, where the canaries
run). Client middlewares, used by :func:`refuse_resend`, exist since 3.12; the private
names below are older, but no version other than the pinned one is tested.

1. ``aiohttp.client_proto.ResponseHandler`` (an internal module) and
   ``BaseConnector._factory`` (a private attribute): upstream connections are built by
   :class:`BudgetedReads`, a ``BufferedProtocol`` that reads into the shared buffer of
   a :class:`~tidegate.files.read_budget.ReadBudget` and hands each read to a real
   ``ResponseHandler``, which it impersonates for aiohttp (every other attribute,
   read or written, is the handler's). aiohttp has no public hook for its protocol
   class. Bought: peak RSS at 200 concurrent downloads 179–202 MiB -> 123 MiB
   (reads sized budget ÷ streams instead of the loop's 256 KiB), and one 1 GiB
   download 1,441–1,677 -> 2,042–2,585 MB/s (4 MiB reads when it is alone).
2. ``ResponseHandler.read_timeout`` (an undocumented setter on the internal class,
   reached through the public ``ClientResponse.connection.protocol``): once a body
   starts, :func:`stop_read_timer` switches off aiohttp's per-read timer and the
   relay times only its waits for upstream bytes itself. aiohttp re-arms that timer
   on every socket read, 9% of the event loop at 200 streams. Bought: ``/nonce`` p99
   under that load 96–124 ms -> 36–50 ms.

Not private, but a behaviour of aiohttp's, also checked by the canaries:

3. :func:`refuse_resend` (a public client middleware) relies on aiohttp resending a
   request only when its handler raises ``ClientOSError`` or
   ``ServerDisconnectedError``. It replaces the private ``ClientSession._retry_connection``
   flag, with no measurable cost (one coroutine call per request).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, cast

import aiohttp
from aiohttp.client_proto import ResponseHandler

from tidegate.files.read_budget import ReadBudget

__all__ = [
    "BudgetedReads",
    "NotResentError",
    "refuse_resend",
    "stop_read_timer",
    "use_budgeted_reads",
]


class BudgetedReads(asyncio.BufferedProtocol):
    """aiohttp's ``ResponseHandler`` reading through a :class:`ReadBudget`'s buffer.

    Deliberately not an ``asyncio.Protocol``: uvloop uses the buffered interface only
    for protocols that are not. The bytes of each read take aiohttp's normal path
    (``data_received``); every other attribute, read or written, is the handler's, so
    aiohttp's connector and responses use this object as their ``ResponseHandler``.
    """

    __slots__ = ("_budget", "_handler")
    _budget: ReadBudget
    _handler: ResponseHandler

    def __init__(self, loop: asyncio.AbstractEventLoop, budget: ReadBudget) -> None:
        object.__setattr__(self, "_handler", ResponseHandler(loop=loop))
        object.__setattr__(self, "_budget", budget)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._handler.connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._handler.connection_lost(exc)

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()

    def eof_received(self) -> None:
        self._handler.eof_received()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._budget.view

    def buffer_updated(self, nbytes: int) -> None:
        # One copy into immutable bytes, as the loop makes for a plain Protocol.
        self._handler.data_received(self._budget.view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        """Bytes from a layer that does not use the buffered interface (some TLS paths)."""
        self._handler.data_received(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handler, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._handler, name, value)


def use_budgeted_reads(connector: aiohttp.TCPConnector, budget: ReadBudget) -> None:
    """Make ``connector`` build its connections' protocols as :class:`BudgetedReads`.

    Call right after creating the connector, inside the running loop, before any
    connection is opened (item 1 of the module docstring).
    """
    connector._factory = cast("functools.partial[ResponseHandler]", functools.partial(
        BudgetedReads, loop=asyncio.get_running_loop(), budget=budget))


def stop_read_timer(response: aiohttp.ClientResponse) -> None:
    """Switch off aiohttp's per-read timer for the rest of ``response``'s body.

    The caller then bounds its own waits for upstream bytes (item 2). A timer already
    armed is dropped at the next socket read.
    """
    connection = response.connection
    protocol = connection.protocol if connection is not None else None
    if protocol is not None:
        protocol.read_timeout = None


class NotResentError(aiohttp.ClientConnectionError):
    """The connection failed before the answer, and the request is not sent again."""


async def refuse_resend(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Client middleware: exactly one attempt per request (item 3).

    aiohttp sends an idempotent request again, once, when the connection drops before
    the answer (``ClientOSError``, ``ServerDisconnectedError``). Raised as another
    ``ClientConnectionError``, the failure ends the request instead; its cause is kept.
    Failures to connect (never resent by aiohttp) pass through unchanged.
    """
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        raise NotResentError(type(exc).__name__) from exc
