"""Settle paid compute v2 jobs when they end: claim the seconds used, or release.

A paid job (Ocean Node's protocol, ``free`` false) locked its maximum cost at start
(``node_start``'s payments seam). Whatever ends it -- finished, failed, stopped, the
time limit, a restart that interrupted it -- its record in the engine's store becomes
finished, and that is what :class:`PaidJobSettler` looks for: a sweep over the job
records, engine-independent (the local and Docker engines write the same records),
that also catches jobs that ended while no process was settling (a crash, a restart).

For each ended paid job it calls, once per process:

- ``settle(job_id, used_seconds)`` if the algorithm ran (``date_started`` is set):
  ``used_seconds`` is ``date_finished - date_started``, the algorithm's run (the
  payments object clamps it to the environment's minimum and the job's maximum);
- ``release(job_id)`` if it never ran (refused inputs, stopped while queued): the
  whole lock returns to the payer.

Both are idempotent (the claim queue keys the claim by job id), so a second process,
or this one after a restart, changes nothing by calling them again. A call that fails
(the store is down) is tried again on the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from tidegate.compute.engines.base import ComputeEngine
from tidegate.compute.jobs import FINISHED, JobRecord
from tidegate.errors import TidegateError

logger = logging.getLogger(__name__)


class JobSettlement(Protocol):
    """What is asked of the payments object (``fees.compute_payments``
    ``EscrowComputePayments``): both return the claim's row, or None for a job that
    holds no lock."""

    async def settle(self, job_id: str, used_seconds: float) -> object | None: ...

    async def release(self, job_id: str) -> object | None: ...


def is_paid_v2(record: JobRecord) -> bool:
    return record.protocol == "node" and not record.free


def used_seconds(record: JobRecord, now: float) -> float | None:
    """Seconds the algorithm of an ended job ran; None if it never started."""
    if record.date_started is None:
        return None
    return max(0.0, (record.date_finished or now) - record.date_started)


class PaidJobSettler:
    """Sweeps ``engine``'s records and settles ended paid jobs through ``payments``."""

    def __init__(self, engine: ComputeEngine, payments: JobSettlement, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.payments = payments
        self.clock = clock
        self._settled: set[str] = set()
        """Jobs settled by this process: skipped on later passes (the rest is cheap
        to repeat: the claim queue keeps one claim per job)."""

    async def settle_ended(self) -> list[str]:
        """One pass: settle every ended paid job not settled yet; the ids settled now."""
        done: list[str] = []
        for record in await self.engine.jobs(None, None, None):
            if (record.job_id in self._settled or not is_paid_v2(record)
                    or record.status not in FINISHED):
                continue
            seconds = used_seconds(record, self.clock())
            try:
                if seconds is None:
                    await self.payments.release(record.job_id)
                else:
                    await self.payments.settle(record.job_id, seconds)
            except TidegateError as exc:  # the store or the chain: the next pass
                logger.warning("settling paid job %s failed, retrying later: %s",
                               record.job_id, exc.message)
                continue
            self._settled.add(record.job_id)
            done.append(record.job_id)
        return done

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """:meth:`settle_ended` every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.settle_ended()
            except TidegateError as exc:  # the engine's store is down: next pass
                logger.warning("paid job settlement pass failed: %s", exc.message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
