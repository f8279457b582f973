"""Concurrency slots per client: at most N requests of one kind in flight per client key.

The token buckets (:mod:`tidegate.ratelimit.buckets`) bound how *often* a client may
ask; they cannot bound how *long* its requests hold what they use. A fileinfo probe
of an origin that drips one byte every few seconds holds an outbound connection
until its time limit, however rarely it was sent. :class:`ConcurrencySlots` bounds
how many such requests one client key (``ratelimit.clients``: the socket peer, or a
trusted proxy's word; an IPv6 /64) has open at once; one more is refused at once
with 429 ``too_many_probes``, never queued (a queue would hold the request anyway).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tidegate.errors import RateLimitedError

__all__ = ["ConcurrencySlots", "TooManyProbesError"]


class TooManyProbesError(RateLimitedError):
    """The client already has the most probing requests in flight that it may have."""

    code = "too_many_probes"


class ConcurrencySlots:
    """At most ``per_client`` slots held at once per client key (0: no cap).

    Not thread-safe: one per worker process, used from its event loop only.
    """

    def __init__(self, per_client: int) -> None:
        if per_client < 0:
            raise ValueError("per_client must not be negative")
        self.per_client = per_client
        self._held: dict[str, int] = {}

    @property
    def held(self) -> int:
        """Slots held now, over all clients."""
        return sum(self._held.values())

    def held_by(self, client: str) -> int:
        return self._held.get(client, 0)

    @contextmanager
    def hold(self, client: str) -> Iterator[None]:
        """Hold one of ``client``'s slots for the block; raise :class:`TooManyProbesError`
        (before the block runs) when the client holds them all."""
        count = self._held.get(client, 0)
        if self.per_client and count >= self.per_client:
            raise TooManyProbesError(
                "Too many requests in progress from this address: retry later.",
                retry_after=1)
        self._held[client] = count + 1
        try:
            yield
        finally:
            left = self._held[client] - 1
            if left:
                self._held[client] = left
            else:
                del self._held[client]  # no entry per client that ever asked
