"""Socket reads of relayed downloads, sized so that many streams share a memory budget.

A relay holds, per stream, what one socket read brought in, what aiohttp has not
handed on yet, and what waits in the client's write queue. With a plain
``asyncio.Protocol`` (aiohttp's ``ResponseHandler`` is one) the event loop reads up to
256 KiB at a time, and aiohttp can pause the socket only after that arrived: at 200
concurrent downloads that read-ahead was most of the worker's memory (about 0.5 MiB
per stream, measured; bench/README.md). Small reads for everyone would cost a single
big download a third of its speed.

So upstream connections read through a ``BufferedProtocol`` into a buffer whose size
is the budget divided by the open body streams, as a power of two between
:data:`MIN_READ` and :data:`MAX_READ`: with the default 4 MiB budget one download reads
4 MiB at a time, 16 downloads 256 KiB each, 200 downloads 16 KiB each.
The kernel's TCP window is untouched, so a distant origin is not slowed down.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from aiohttp.client_proto import ResponseHandler

__all__ = ["MAX_READ", "MIN_READ", "BudgetedReads", "ReadBudget"]

MIN_READ: Final = 16 * 1024
MAX_READ: Final = 4 * 1024 * 1024  # a lone download: few, large syscalls


class ReadBudget:
    """The bytes one socket read may bring in, shared by a client's open body streams.

    Streams, not connections: idle keep-alive connections read nothing, and counting
    them would shrink the reads of the one download that runs after a busy minute.
    All connections read into one buffer of :data:`MAX_READ` bytes: a read fills it,
    and its bytes are copied out before the loop reads anything else (the event loop
    calls ``get_buffer``, reads, then ``buffer_updated``, without yielding), so no
    connection holds a buffer of its own.
    """

    def __init__(self, total: int) -> None:
        if total < MIN_READ:
            raise ValueError(f"the read budget must be at least {MIN_READ} bytes")
        self.total = total
        self.streams = 0
        self._buffer = memoryview(bytearray(MAX_READ))
        self.read_size = self._share()
        self.view = self._buffer[: self.read_size]

    def stream_started(self) -> None:
        self.streams += 1
        self._update()

    def stream_ended(self) -> None:
        self.streams = max(0, self.streams - 1)
        self._update()

    def _update(self) -> None:
        self.read_size = self._share()
        self.view = self._buffer[: self.read_size]

    def _share(self) -> int:
        """``total / streams`` rounded down to a power of two, within the bounds."""
        share = self.total // max(1, self.streams)
        return min(MAX_READ, max(MIN_READ, 1 << (share.bit_length() - 1)))


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
