"""Settle paid compute v2 jobs when they end: claim the seconds used, or release.

A paid job (Ocean Node's protocol, ``free`` false) locked its maximum cost at start
(``node_start``'s payments seam), and the lock is kept in the store (``escrow_locks``)
until its claim is queued (``escrow_claims``). :class:`PaidJobSettler` sweeps exactly
those locks -- :meth:`Store.unclaimed_escrow_locks`, not every job record -- and asks
the engine for that one job (``engine.jobs(payer, job_id, None)``, the payer named by
the lock). It is engine-independent: the local and Docker engines keep records, the
operator-service engine asks the operator (and merges what Tidegate stored at start).
A job that ended while no process was settling (a crash, a restart) is caught the
same way: its lock still has no claim.

For each ended job (status in ``compute.jobs.FINISHED``) it calls, once per process:

- ``settle(job_id, used_seconds)`` if the algorithm ran (``JobRecord.used_seconds``:
  the algorithm's run on the local and Docker engines, the operator's timestamps on
  the operator-service engine; the payments object clamps it to the environment's
  minimum and the job's maximum);
- ``release(job_id)`` if it never ran (refused inputs, a provisioning failure, stopped
  while queued): the whole lock returns to the payer.

**A job the engine does not know** (404, or no record: deleted, the engine's store
lost, the operator forgot it) is not settled at once: a lock is stored just before
the engine starts its job, so a lock without a job may be a start in progress. It is
asked again on every pass until the lock's expiry (``created + lockSeconds``); after
that it is released. On chain the claim queue's expired-lock sweep
(``ClaimQueue.sweep_expired``) has then returned (or will return) the funds to the
payer anyway; the release queues a claim row (it ends ``expired`` or ``gone``), so the
lock leaves this sweep instead of being asked about forever.

Both calls are idempotent (the claim queue keys the claim by job id), so a second
process, or this one after a restart, changes nothing by calling them again. A call
that fails (the store or the engine is down) is tried again on the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Protocol

from tidegate.compute.engines.base import ComputeEngine
from tidegate.compute.jobs import FINISHED, JobRecord
from tidegate.errors import NotFoundError, TidegateError
from tidegate.stores.base import EscrowLockRow, Store

logger = logging.getLogger(__name__)


class JobSettlement(Protocol):
    """What is asked of the payments object (``fees.compute_payments``
    ``EscrowComputePayments``): both return the claim's row, or None for a job that
    holds no lock."""

    async def settle(self, job_id: str, used_seconds: float) -> object | None: ...

    async def release(self, job_id: str) -> object | None: ...


def _lock_terms(lock: EscrowLockRow) -> tuple[str, float]:
    """The payer and the expiry (epoch seconds) of a stored lock (``JobPayment`` JSON)."""
    document = json.loads(lock.document)
    return str(document["payer"]), lock.created_ms / 1000 + float(document["lockSeconds"])


class PaidJobSettler:
    """Sweeps the unclaimed escrow locks in ``store`` and settles their ended jobs on
    ``engine`` through ``payments`` (see the module)."""

    def __init__(self, engine: ComputeEngine, payments: JobSettlement, store: Store, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.payments = payments
        self.store = store
        self.clock = clock
        self._settled: set[str] = set()
        """Jobs settled by this process: skipped on later passes (the store would no
        longer list them once their claim is queued; this covers a slow store)."""

    async def _record(self, payer: str, job_id: str) -> JobRecord | None:
        """The engine's record of the job, None if the engine does not know it."""
        try:
            records = await self.engine.jobs(payer, job_id, None)
        except NotFoundError:
            return None
        return next((r for r in records if r.job_id == job_id), records[0] if records
                    else None)

    async def settle_ended(self) -> list[str]:
        """One pass: settle every ended paid job not settled yet; the ids settled now."""
        done: list[str] = []
        for lock in await self.store.unclaimed_escrow_locks():
            if lock.job_id in self._settled:
                continue
            try:
                payer, expiry = _lock_terms(lock)
            except (ValueError, KeyError, TypeError):
                logger.error("escrow lock of job %s is unreadable; left to expire",
                             lock.job_id)
                continue
            try:
                record = await self._record(payer, lock.job_id)
                if record is None:
                    if self.clock() <= expiry:
                        continue  # a start in progress, or gone: asked again next pass
                    await self.payments.release(lock.job_id)
                elif record.status not in FINISHED:
                    continue
                elif (seconds := record.used_seconds(self.clock())) is None:
                    await self.payments.release(lock.job_id)
                else:
                    await self.payments.settle(lock.job_id, seconds)
            except TidegateError as exc:  # the store, the engine or the chain: next pass
                logger.warning("settling paid job %s failed, retrying later: %s",
                               lock.job_id, exc.message)
                continue
            self._settled.add(lock.job_id)
            done.append(lock.job_id)
        return done

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """:meth:`settle_ended` every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.settle_ended()
            except TidegateError as exc:  # the store is down: next pass
                logger.warning("paid job settlement pass failed: %s", exc.message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
