"""The persistent queue of escrow claims: a claim that fails is retried, never lost.

Ocean Node claims a finished job's payment once and forgets it when the claim fails
(Ocean Node #1194). Here every claim is first written to the store
(``escrow_claims``, SQLite or PostgreSQL) and only then sent; it stays ``pending``
until the chain says what became of the lock:

- ``claimed``: the claim was mined (the ``Claimed`` event names the job);
- ``expired``: the lock had expired when the claim was mined, so the contract
  cancelled it and returned everything to the payer (the provider is not paid);
- ``gone``: the lock is no longer on chain (claimed by an earlier attempt whose
  receipt was lost, or cancelled after expiry by anyone).

**Idempotent.** A job has one claim row (the job id is its key; queueing it twice
changes nothing). A worker leases the rows it processes in one atomic statement, so
two workers or replicas never process one row at once. The transaction hash is
stored *before* waiting for the receipt: the next attempt first looks that
transaction up (mined: its events decide; still in the mempool: wait; dropped:
send again) and then checks that the lock is still there before sending anything.
The contract deletes a lock when it is claimed, so a lock is never paid twice even
if two claims were mined.

**Retries.** A failed attempt (RPC down, no receipt in time, the provider out of
gas, a revert) is counted, its error noted (no URL, no key) and the claim is due
again after a backoff (``15 s × 2^attempts``, at most 5 minutes). Retries continue
until the row is final. A lock expires ``claim_timeout`` seconds after the job's
maximum duration (``EscrowPayments``): a chain unreachable for that long costs the
provider the payment (``expired``), never the payer.

:meth:`ClaimQueue.retry_due` is what the composition root runs periodically (or
:meth:`ClaimQueue.run` as a task, which also cancels expired locks nobody claims:
:meth:`ClaimQueue.sweep_expired`). Claims due on one chain go in one batched
``claimLocksAndWithdraw``; if that fails, each is tried alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tidegate.chain.escrow import Claim, ClaimOutcome, EscrowClient, Lock
from tidegate.chain.transactions import TransactionRevertedError
from tidegate.errors import TidegateError
from tidegate.stores.base import ClaimRow, Store

logger = logging.getLogger(__name__)

CLAIMED = "claimed"
EXPIRED = "expired"
GONE = "gone"
LEASE_MS = 180_000
"""How long a worker holds a claim it processes (longer than a receipt wait)."""
BATCH = 20


@dataclass(frozen=True)
class Backoff:
    """Delay before the next attempt: ``base × 2^attempts``, at most ``cap`` (seconds)."""

    base: float = 15.0
    cap: float = 300.0

    def delay(self, attempts: int) -> float:
        return float(min(self.cap, self.base * 2 ** min(attempts, 30)))


@dataclass
class RetryReport:
    """What one :meth:`ClaimQueue.retry_due` pass did: job ids by final state, and retried."""

    final: dict[str, str] = field(default_factory=dict)
    retried: list[str] = field(default_factory=list)


def claim_document(claim: Claim) -> str:
    """The JSON a claim row keeps (``uint256`` values as decimal strings)."""
    return json.dumps({"lockId": str(claim.job_id), "token": claim.token,
                       "payer": claim.payer, "amount": str(claim.amount),
                       "proof": claim.proof.hex()})


def claim_of(row: ClaimRow) -> Claim:
    doc = json.loads(row.document)
    return Claim(int(doc["lockId"]), doc["token"], doc["payer"], int(doc["amount"]),
                 bytes.fromhex(doc["proof"]))


class ClaimQueue:
    """Claims owed to the provider, kept in ``store`` until final (see the module)."""

    def __init__(self, store: Store, escrows: Mapping[int, EscrowClient], *,
                 backoff: Backoff = Backoff(), lease_ms: int = LEASE_MS,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.escrows = escrows
        self.backoff = backoff
        self.lease_ms = lease_ms
        self.clock = clock
        # One holder per queue object: leases of a crashed process run out by themselves.
        self.holder = secrets.token_hex(8)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def enqueue(self, job_id: str, chain_id: int, claim: Claim) -> bool:
        """Persist the claim of ``job_id`` (due at once); False if it was already queued."""
        return await self.store.add_claim(job_id, chain_id, claim_document(claim),
                                          self._now_ms())

    async def attempt(self, job_id: str) -> ClaimRow | None:
        """Try the claim of ``job_id`` now (unless another worker holds it); its row after."""
        rows = await self.store.take_claims(self.holder, self._now_ms(), self.lease_ms, 1,
                                            job_id=job_id)
        await self._process(rows, RetryReport())
        return await self.store.get_claim(job_id)

    async def retry_due(self, limit: int = BATCH) -> RetryReport:
        """Process up to ``limit`` due claims once; never raises for a claim's failure."""
        report = RetryReport()
        rows = await self.store.take_claims(self.holder, self._now_ms(), self.lease_ms, limit)
        await self._process(rows, report)
        return report

    async def sweep_expired(self) -> dict[int, int]:
        """Cancel this provider's expired locks on every chain; chain id -> how many.

        A lock with no claim (its job record lost, a job that never settled) would keep
        the payer's funds locked until someone cancels it: the contract lets anyone,
        and this returns them. Claims still pending find their lock gone afterwards.
        """
        cancelled: dict[int, int] = {}
        for chain_id, escrow in self.escrows.items():
            try:
                now = await escrow.chain_time()
                expired = [(lock.job_id, lock.token, lock.payer)
                           for lock in await escrow.locks() if lock.expiry < now]
                if expired:
                    outcome = await escrow.cancel_expired_locks(expired)
                    cancelled[chain_id] = len(outcome.cancelled)
                    logger.warning("cancelled %d expired escrow locks on chain %s",
                                   len(outcome.cancelled), chain_id)
            except TidegateError as exc:  # one chain down does not stop the others
                logger.warning("escrow lock sweep on chain %s failed: %s", chain_id,
                               exc.message)
        return cancelled

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Every ``interval`` seconds until ``stop`` is set: :meth:`retry_due`, then
        :meth:`sweep_expired`."""
        while not stop.is_set():
            try:
                await self.retry_due()
                await self.sweep_expired()
            except TidegateError as exc:  # the store or a chain is down: next pass
                logger.warning("escrow claim retry pass failed: %s", exc.message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    # --- one pass ------------------------------------------------------------------
    async def _process(self, rows: list[ClaimRow], report: RetryReport) -> None:
        by_chain: dict[int, list[ClaimRow]] = {}
        for row in rows:
            by_chain.setdefault(row.chain_id, []).append(row)
        for chain_id, chain_rows in by_chain.items():
            escrow = self.escrows.get(chain_id)
            if escrow is None:
                for row in chain_rows:
                    await self._later(row, f"no Escrow is configured for chain {chain_id}",
                                      report)
                continue
            try:
                await self._process_chain(escrow, chain_rows, report)
            except TidegateError as exc:
                for row in chain_rows:
                    if row.job_id not in report.final and row.job_id not in report.retried:
                        await self._later(row, exc.message, report)

    async def _process_chain(self, escrow: EscrowClient, rows: list[ClaimRow],
                             report: RetryReport) -> None:
        unsent: list[ClaimRow] = []
        for row in rows:
            if row.tx_hash and await self._resolve_sent(escrow, row, report):
                continue
            if row.job_id not in report.retried:
                unsent.append(row)
        if not unsent:
            return
        locks = {(lock.job_id, lock.payer.lower(), lock.token.lower()): lock
                 for lock in await escrow.locks()}
        ready: list[tuple[ClaimRow, Claim]] = []
        for row in unsent:
            claim = claim_of(row)
            lock = locks.get((claim.job_id, claim.payer.lower(), claim.token.lower()))
            if lock is None:
                await self._finish(row, GONE, row.tx_hash,
                                   "the lock is not on chain (claimed or cancelled before)",
                                   report)
                continue
            ready.append((row, _bounded(claim, lock)))
        if len(ready) > 1:
            try:
                await self._send(escrow, ready, report)
                return
            except TidegateError as exc:
                logger.warning("batched escrow claim failed, trying one by one: %s",
                               exc.message)
        for row, claim in ready:
            try:
                await self._send(escrow, [(row, claim)], report)
            except TransactionRevertedError as exc:
                if exc.reason == "Lock not found":
                    await self._finish(row, GONE, "", "the lock is not on chain", report)
                else:
                    await self._later(row, exc.message, report)
            except TidegateError as exc:
                await self._later(row, exc.message, report)

    async def _resolve_sent(self, escrow: EscrowClient, row: ClaimRow,
                            report: RetryReport) -> bool:
        """Settle a row whose transaction was sent before; False: send it (again)."""
        receipt = await escrow.sender.find_receipt(row.tx_hash, "escrow claim")
        if receipt is None:
            if await escrow.sender.is_pending(row.tx_hash, "escrow claim"):
                await self._later(row, "the claim transaction is not mined yet", report)
                return True
            return False  # dropped: the lock check decides whether to send again
        if receipt["status"] == 1:
            return await self._apply(row, claim_of(row), escrow.outcome(receipt), report)
        return False

    async def _send(self, escrow: EscrowClient, batch: list[tuple[ClaimRow, Claim]],
                    report: RetryReport) -> None:
        sent = await escrow.send_claims([claim for _, claim in batch])
        for row, _ in batch:
            await self.store.mark_claim_sent(row.job_id, self.holder, sent.tx_hash,
                                             self._now_ms())
        try:
            receipt = await escrow.sender.receipt(sent.tx_hash, "escrow claim")
        except TransactionRevertedError as exc:
            for row, _ in batch:  # the next attempt re-checks the lock before resending
                await self._later(row, exc.message, report)
            return
        except TidegateError as exc:
            for row, _ in batch:  # the hash is stored: the next attempt looks it up
                await self._later(row, exc.message, report)
            return
        outcome = escrow.outcome(receipt)
        for row, claim in batch:
            if not await self._apply(row, claim, outcome, report):
                await self._later(row, "the claim transaction did not name this job", report)

    async def _apply(self, row: ClaimRow, claim: Claim, outcome: ClaimOutcome,
                     report: RetryReport) -> bool:
        if claim.job_id in outcome.claimed:
            await self._finish(row, CLAIMED, outcome.tx_hash,
                               f"claimed {outcome.claimed[claim.job_id]}", report)
            return True
        if claim.job_id in outcome.cancelled:
            logger.error("escrow lock of job %s expired before it was claimed: the payer "
                         "was refunded, the provider was not paid", row.job_id)
            await self._finish(row, EXPIRED, outcome.tx_hash, "the lock had expired", report)
            return True
        return False

    async def _finish(self, row: ClaimRow, state: str, tx_hash: str, note: str,
                      report: RetryReport) -> None:
        if await self.store.finish_claim(row.job_id, self.holder, state, tx_hash, note,
                                         self._now_ms()):
            report.final[row.job_id] = state

    async def _later(self, row: ClaimRow, error: str, report: RetryReport) -> None:
        delay_ms = int(self.backoff.delay(row.attempts) * 1000)
        logger.warning("escrow claim of job %s failed (attempt %d), retrying in %d s: %s",
                       row.job_id, row.attempts + 1, delay_ms // 1000, error)
        if await self.store.retry_claim_later(row.job_id, self.holder, error[:500],
                                              self._now_ms() + delay_ms, self._now_ms()):
            report.retried.append(row.job_id)


def _bounded(claim: Claim, lock: Lock) -> Claim:
    """Never ask for more than the lock holds (the contract would refuse the claim)."""
    if claim.amount <= lock.amount:
        return claim
    return Claim(claim.job_id, claim.token, claim.payer, lock.amount, claim.proof)
