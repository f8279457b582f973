"""Admitting a job (disk room), waiting for its slot, and for work a stop may interrupt
(engine-independent).

A job of this process is an :class:`ActiveJob`: its ``stop`` event is set by a stop
asked here or, as polled through ``stopped_elsewhere``, by another process (the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from tidegate.compute.jobs import QUEUE_EXPIRED_TEXT
from tidegate.errors import ServiceUnavailableError

__all__ = ["QUEUE_EXPIRED_TEXT", "ActiveJob", "InsufficientDiskError", "cancel",
           "check_disk_room", "queue_deadline", "queue_expired", "queue_expired_detail",
           "until_stopped", "wait_for_slot"]


_T = TypeVar("_T")
_R = TypeVar("_R")


class InsufficientDiskError(ServiceUnavailableError):
    """The compute directory's disk is too full for another job (503)."""

    code = "insufficient_disk"


async def check_disk_room(directory: Path, job_bytes: int, min_free_bytes: int) -> None:
    """Raise :class:`InsufficientDiskError` unless ``directory``'s disk keeps
    ``min_free_bytes`` free after a job writes ``job_bytes``.

    Refused before the job starts: a provider whose disk fills stalls every job.
    """
    free = (await asyncio.to_thread(shutil.disk_usage, directory)).free
    if free - job_bytes < min_free_bytes:
        raise InsufficientDiskError("Compute is unavailable: not enough free disk space "
                                    "for another job; try again later.")


@dataclass
class ActiveJob(Generic[_R]):
    """A job this process accepted and has not finished; ``run`` is the engine's own."""

    job_id: str
    env_id: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    running: bool = False
    task: asyncio.Task[None] | None = None
    run: _R | None = None


async def cancel(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for it, whatever it raises."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def queue_deadline(queue_max_wait: int) -> float | None:
    """The ``time.monotonic()`` by which a job must have its slot (None: no limit)."""
    return time.monotonic() + queue_max_wait if queue_max_wait > 0 else None


def queue_expired(deadline: float | None) -> bool:
    """Whether a job waiting for its slot is past its ``queue_deadline``."""
    return deadline is not None and time.monotonic() >= deadline


def queue_expired_detail(queue_max_wait: int) -> str:
    """The record's detail for a job ended in the queue (it never ran)."""
    return (f"The job waited longer than its queueMaxWaitTime ({queue_max_wait} s) for a "
            "free slot and was not run.")


async def wait_for_slot(slots: asyncio.Semaphore, active: ActiveJob[Any],
                        stopped_elsewhere: Callable[[], Awaitable[bool]],
                        deadline: float | None = None) -> bool:
    """Acquire one of ``slots``; False (nothing held) if the job was stopped meanwhile
    or is past ``deadline`` (:func:`queue_deadline`; the caller tells which by
    ``active.stop``, set only by a stop).

    ``stopped_elsewhere`` and the deadline are checked about once a second.
    """
    acquire = asyncio.ensure_future(slots.acquire())
    while True:
        stopped = asyncio.ensure_future(active.stop.wait())
        done, _ = await asyncio.wait({acquire, stopped}, timeout=1.0,
                                     return_when=asyncio.FIRST_COMPLETED)
        await cancel(stopped)
        if acquire in done and not active.stop.is_set():
            return True
        if (acquire in done or active.stop.is_set() or queue_expired(deadline)
                or await stopped_elsewhere()):
            await cancel(acquire)
            if acquire.done() and not acquire.cancelled():
                slots.release()  # acquired just before the stop
            return False


async def until_stopped(work: Awaitable[_T], active: ActiveJob[Any],
                        limit: float) -> tuple[str, _T | None]:
    """Run ``work`` unless stopped: ``("done", result)``, ``("stopped", None)``, or
    ``("timeout", None)`` after ``limit`` seconds (``work`` is cancelled then)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(active.stop.wait())
    done, _ = await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED,
                                 timeout=limit)
    await cancel(stopped)
    if task in done:
        return "done", task.result()
    await cancel(task)
    return ("stopped" if active.stop.is_set() else "timeout"), None
