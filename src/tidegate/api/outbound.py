"""Requests that wait on an outbound connection: released when the client leaves.

A handler that waits on an origin (fileinfo's probes, initialize's file check, a
download's first answer) otherwise keeps waiting after its client has gone: Starlette
notices a disconnect only when it next reads or writes. :func:`until_disconnect` races
the work against the ASGI ``http.disconnect`` message and cancels the work when the
client leaves first, which closes its upstream connection at once.
:func:`probing` also holds one of the client's probe slots
(:class:`~tidegate.ratelimit.slots.ConcurrencySlots`), so that one address cannot
hold many probes of a slow origin open (429 ``too_many_probes`` beyond
``TIDEGATE_PROBES_PER_CLIENT``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any, TypeVar

from starlette.requests import Request

from tidegate.api.context import services
from tidegate.errors import ClientDisconnectedError

__all__ = ["probing", "until_disconnect"]

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    """Return when the client has gone (body messages not read yet are dropped: the
    handlers that use this have parsed their parameters already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """``await work``, cancelled when the client disconnects first
    (:class:`ClientDisconnectedError`: logged as a disconnect, counted as 499).

    Call after the request's body has been read (the parameters are parsed first).
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():  # the client left, or we are cancelled ourselves
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
    if task.cancelled():
        raise ClientDisconnectedError("The client disconnected.")
    return task.result()


async def probing(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """:func:`until_disconnect` in one of the client's probe slots (429 when it has none)."""
    svc = services(request)
    client = svc.client_keys.key(request.scope.get("client"), request.scope["headers"])
    slot = svc.probe_slots.hold(client)
    try:
        slot.__enter__()  # raises TooManyProbesError before the work starts
    except BaseException:
        work.close()  # never awaited: close it, or Python warns about it
        raise
    try:
        return await until_disconnect(request, work)
    finally:
        slot.__exit__(None, None, None)
