"""GCRA buckets, decided locally, shared through a backend in batches.

Each (route class, key kind) has a :class:`Bucket`: for every key (a client address
or a signer) the *theoretical arrival time* (TAT) of the GCRA, the token bucket's
equivalent in one number (integer µs since the epoch: exact, and comparable between
processes and machines whose clocks agree). A request at ``now`` is admitted when
``max(tat, now) + interval - now <= burst * interval``, which lets ``burst`` requests
through at once and then one per ``interval`` (1 / rate).

The decision reads and writes a dict in the worker; it waits for nothing once the
worker knows the key. The worker's counts reach the shared state (Redis, PostgreSQL
or an SQLite file, see :mod:`tidegate.ratelimit.backends`) in one batch every
``sync_interval`` (sooner when one key has used an eighth of its burst since the last
batch), and each batch returns the shared TAT of its keys, which holds the other
workers' requests too. Merging is ``shared = max(shared + count * interval, worker's
tat)``: exact for one worker; across workers the long-run rate is the configured one,
and what another worker admitted since its last batch is seen at the next one.

A key the worker does not know yet (a new client, or one idle long enough to be
forgotten) is first fetched: its first request waits for the next batch (coalesced
with every other key asked for meanwhile; a millisecond or so), so a client that
spent its burst on one worker is refused by the others from its first request there.

If the backend fails, the batch is dropped, nothing waits for it any more, and every
worker limits on its own until a batch succeeds again: no request is ever refused
because the shared state is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from tidegate.settings import ClassLimit

log = logging.getLogger("tidegate.ratelimit")

KINDS = ("address", "signer")
_PRUNE_EVERY = 5_000_000  # µs between sweeps of keys whose bucket is full again
_WARN_EVERY = 60_000_000  # µs between two warnings that the shared state is down
UNKNOWN = -1
"""What :meth:`Bucket.take` returns for a key that must be fetched first."""
FETCH_TIMEOUT = 0.25
"""Seconds a request waits at most for its key's shared state."""
_MIN_GAP = 0.002  # seconds between two batches


def now_us() -> int:
    """The wall clock in µs (the clock of every decision)."""
    return time.time_ns() // 1000


class SharedState(Protocol):
    """Where the workers' buckets meet. Keys are unique within one call and sorted."""

    name: str

    async def open(self) -> None:
        """Prepare (must not raise when the service is down: merge will)."""

    async def close(self) -> None:
        """Release connections."""

    async def merge(self, rows: Sequence[tuple[str, int, int]]) -> list[int]:
        """For each ``(key, step_us, tat_us)`` store and return, atomically,
        ``max(stored + step_us, tat_us)`` (``tat_us`` when nothing is stored), in µs."""


class Bucket:
    """GCRA state of one route class and key kind, in this worker."""

    __slots__ = ("burst", "half", "hot", "interval", "kind", "name", "pending", "prefix", "rate",
                 "shared", "tat", "threshold", "tolerance", "wake")

    def __init__(self, name: str, kind: str, limit: ClassLimit, wake: Callable[[], None]) -> None:
        self.name, self.kind = name, kind
        self.rate, self.burst = limit.rate, limit.burst
        self.interval = max(1, round(1_000_000 / limit.rate))  # µs between two requests
        self.tolerance = limit.burst * self.interval
        self.tat: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        """Requests admitted per key since the last batch (0: only refresh the key)."""
        self.hot: set[str] = set()
        """Keys past half their burst: exchanged in every batch, even without requests."""
        self.half = self.tolerance // 2
        self.threshold = max(1, limit.burst // 8)
        self.wake = wake
        self.prefix = f"{name}:{kind}:"
        self.shared = False
        """True while batches succeed: an unknown key is fetched before it is decided."""

    def take(self, key: str, now: int) -> int:
        """Admit one request of ``key`` at ``now`` (0), return the µs until one would be
        admitted, or :data:`UNKNOWN` when the key must be fetched first."""
        tat = self.tat.get(key)
        if tat is None:
            if self.shared:
                return UNKNOWN
            tat = now
        elif tat < now:
            tat = now
        tat += self.interval
        ahead = tat - now
        if ahead > self.tolerance:
            if key not in self.pending:
                self.pending[key] = 0  # learn the other workers' count at the next batch
            return ahead - self.tolerance
        self.tat[key] = tat
        if ahead > self.half:
            self.hot.add(key)
        pending = self.pending
        count = pending.get(key, 0) + 1
        pending[key] = count
        if count == self.threshold:
            self.wake()
        return 0

    def snapshot(self, now: int) -> list[tuple[str, int, int]]:
        """``(key, step_us, tat_us)`` of every key to exchange; counts reset.

        Those are the keys with requests since the last batch and the keys close to their
        limit (where another worker's requests matter), not every key known.
        """
        pending, self.pending = self.pending, {}
        tat, interval = self.tat, self.interval
        rows = [(key, count * interval, tat.get(key, 0)) for key, count in pending.items()]
        if self.hot:
            half = self.half
            self.hot = {k for k in self.hot if tat.get(k, 0) - now > half}
            rows += [(k, 0, tat[k]) for k in self.hot if k not in pending]
        return rows

    def apply(self, key: str, shared_us: int) -> None:
        """Take in the shared TAT of ``key`` (requests admitted since the batch stay)."""
        merged = shared_us + self.pending.get(key, 0) * self.interval
        current = self.tat.get(key)
        if current is None or merged > current:
            self.tat[key] = merged

    def prune(self, now: int) -> None:
        """Forget keys whose bucket is full again (the same as never seen)."""
        if self.tat:
            self.tat = {k: v for k, v in self.tat.items() if v > now or k in self.pending}


class SyncStats(Protocol):
    """What the sync loop reports (Prometheus collectors in practice)."""

    def synced(self, ok: bool) -> None:
        """One batch exchanged (True) or failed (False)."""


class Limiter:
    """Every bucket of one worker, and the loop that shares them."""

    def __init__(self, limits: dict[str, ClassLimit], *, sync_interval: float = 0.1,
                 clock: Callable[[], int] = now_us) -> None:
        self.clock = clock
        """µs since the epoch."""
        self.sync_interval = sync_interval
        self._wake: asyncio.Event | None = None
        self._next: asyncio.Future[None] | None = None
        self.buckets: dict[tuple[str, str], Bucket] = {
            (name, kind): Bucket(name, kind, limit, self._wake_up)
            for name, limit in limits.items() if limit.rate > 0 for kind in KINDS
        }
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0
        self._last_warning = -_WARN_EVERY
        self._backoff = 0.0

    def bucket(self, name: str, kind: str) -> Bucket | None:
        """The bucket of a route class (None: the class is not limited)."""
        return self.buckets.get((name, kind))

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _share(self, on: bool) -> None:
        for bucket in self.buckets.values():
            bucket.shared = on

    # --- sharing ---------------------------------------------------------------------
    def start(self, backend: SharedState, stats: SyncStats | None = None) -> None:
        """Run the sync loop in the background (call from the event loop)."""
        self._wake = asyncio.Event()
        self._next = asyncio.get_running_loop().create_future()
        self._share(True)
        self._task = asyncio.create_task(self._run(backend, stats), name="rate-limit-sync")

    async def stop(self) -> None:
        self._share(False)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._next is not None and not self._next.done():
            self._next.set_result(None)

    async def fetch(self, bucket: Bucket, key: str) -> None:
        """Wait for the next batch to bring ``key``'s shared state (not long: if it has
        not come within :data:`FETCH_TIMEOUT`, the key is decided locally)."""
        batch = self._next
        if bucket.shared and batch is not None and key not in bucket.tat:
            if key not in bucket.pending:
                bucket.pending[key] = 0
            self._wake_up()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FETCH_TIMEOUT):
                    await asyncio.shield(batch)
        if key not in bucket.tat:
            bucket.tat[key] = 0  # nothing known: an untouched bucket

    async def flush(self) -> None:
        """Wait until the next batch has been exchanged (tests, shutdown)."""
        batch = self._next
        if batch is not None and self._task is not None:
            self._wake_up()
            await asyncio.shield(batch)

    async def _run(self, backend: SharedState, stats: SyncStats | None) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            if self._backoff:  # the backend failed: no early batches until it answers
                await asyncio.sleep(self._backoff)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.sync_interval):
                        await wake.wait()
            wake.clear()
            await self.sync(backend, stats)
            # Many keys crossing their thresholds: still at most one batch per 2 ms.
            await asyncio.sleep(_MIN_GAP)

    async def sync(self, backend: SharedState, stats: SyncStats | None = None) -> bool:
        """Exchange one batch with ``backend`` now; False (and local limits only) on failure.

        Whoever waits for this batch (:meth:`fetch`, :meth:`flush`) is released at the end.
        """
        done = self._next
        if done is not None:
            self._next = asyncio.get_running_loop().create_future()
        try:
            return await self._exchange(backend, stats)
        finally:
            if done is not None and not done.done():
                done.set_result(None)

    async def _exchange(self, backend: SharedState, stats: SyncStats | None) -> bool:
        now = self.clock()
        batch: list[tuple[str, int, int]] = []
        owners: dict[str, tuple[Bucket, str]] = {}
        for bucket in self.buckets.values():
            for key, step, tat in bucket.snapshot(now):
                full = bucket.prefix + key
                batch.append((full, step, tat))
                owners[full] = (bucket, key)
        if now - self._last_prune >= _PRUNE_EVERY:
            self._last_prune = now
            for bucket in self.buckets.values():
                bucket.prune(now)
        if not batch:
            return True
        batch.sort()
        try:
            shared = await backend.merge(batch)
        except Exception as exc:  # fail open: this batch is lost, local limits go on
            self._backoff = min(5.0, max(0.25, self._backoff * 2))
            self._share(False)
            if stats is not None:
                stats.synced(False)
            if now - self._last_warning >= _WARN_EVERY:
                self._last_warning = now
                log.warning("rate limit: the shared state (%s) is unavailable (%s); each "
                            "worker limits on its own until it is back", backend.name,
                            type(exc).__name__)
            return False
        if self._backoff:
            self._backoff = 0.0
            self._share(self._task is not None)
        if stats is not None:
            stats.synced(True)
        for (full, _step, _tat), value in zip(batch, shared, strict=True):
            bucket, key = owners[full]
            bucket.apply(key, value)
        return True
