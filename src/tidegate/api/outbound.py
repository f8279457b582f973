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
    The work runs in the request's own task, which a watcher task cancels when the
    disconnect arrives: one task per request, not a task for the work and a
    ``wait`` over both (which cost initialize about 60 µs a request).
    """
    current = asyncio.current_task()
    if current is None:  # not inside a task: nothing could cancel the work
        return await work
    left = False

    def client_left(watcher: asyncio.Future[None]) -> None:
        nonlocal left
        if not watcher.cancelled() and watcher.exception() is None:
            left = True
            current.cancel()

    watcher = asyncio.ensure_future(_disconnected(request))
    watcher.add_done_callback(client_left)
    try:
        result = await work
    except asyncio.CancelledError:
        if not left:  # we are cancelled ourselves
            raise
        current.uncancel()
        raise ClientDisconnectedError("The client disconnected.") from None
    finally:
        watcher.remove_done_callback(client_left)
        watcher.cancel()
    if left:  # the work swallowed the cancellation and finished anyway
        current.uncancel()
    return result


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
