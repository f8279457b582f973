"""Socket reads of relayed downloads, sized so that many streams share a memory budget.

A relay holds, per stream, what one socket read brought in, what aiohttp has not
handed on yet, and what waits in the client's write queue. With a plain
``asyncio.Protocol`` (aiohttp's ``ResponseHandler`` is one) the event loop reads up to
256 KiB at a time, and aiohttp can pause the socket only after that arrived: at 200
concurrent downloads that read-ahead was most of the worker's memory (about 0.5 MiB
per stream, measured; bench/README.md). Small reads for everyone would cost a single
big download a third of its speed.

So upstream connections read through a ``BufferedProtocol``
(:class:`tidegate.files.aiohttp_internals.BudgetedReads`) into a buffer whose size
is the budget divided by the open body streams, as a power of two between
:data:`MIN_READ` and :data:`MAX_READ`: with the default 4 MiB budget one download reads
4 MiB at a time, 16 downloads 256 KiB each, 200 downloads 16 KiB each.
The kernel's TCP window is untouched, so a distant origin is not slowed down.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_READ", "MIN_READ", "ReadBudget"]

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
