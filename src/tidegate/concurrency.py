"""When CPU-bound work leaves the event loop: one threshold, one helper.

ECIES, LZMA and JSON decoding of a small document cost less than a hop to a worker
thread; on large ones they would stall every other request on the loop. The size
of the input decides, with one threshold for every such call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

OFFLOAD_BYTES: Final = 64 * 1024
"""Inputs larger than this run in a worker thread; below it the hop costs more than the work."""


async def cpu_bound(size: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``: inline for an input of ``size`` bytes up to
    :data:`OFFLOAD_BYTES`, else in a worker thread so the loop keeps serving."""
    if size <= OFFLOAD_BYTES:
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)
