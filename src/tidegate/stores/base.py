"""The Store protocol: what Tidegate keeps between requests and restarts.

Implementations: SQLite (one machine, the default) and PostgreSQL (several
replicas). Both must make :meth:`Store.advance_nonce` a single atomic statement so
that N concurrent requests carrying the same fresh nonce give exactly one success,
across processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

CLAIM_PENDING = "pending"
"""An escrow claim still to be made (the only state a worker takes)."""


@dataclass(frozen=True)
class ClaimRow:
    """One queued escrow claim (``escrow_claims``); ``document`` is the claim's JSON."""

    job_id: str
    chain_id: int
    state: str
    attempts: int
    next_attempt_ms: int
    tx_hash: str
    last_error: str
    document: str


@dataclass(frozen=True)
class EscrowLockRow:
    """A paid job's escrow lock (``escrow_locks``); ``document`` is its JobPayment JSON."""

    job_id: str
    document: str
    created_ms: int


@dataclass(frozen=True)
class OperatorJobRow:
    """What Tidegate knows of a job it started on the operator-service engine
    (``operator_jobs``): ``job_id`` is Tidegate's id (the escrow lock's), ``operator_job_id``
    the operator's, ``document`` the JSON the operator does not keep."""

    job_id: str
    operator_job_id: str
    document: str


class Store(Protocol):
    """Async persistence used by auth (nonces, revoked tokens, secrets)."""

    async def open(self) -> None:
        """Connect and create or migrate the schema."""

    async def close(self) -> None:
        """Release connections."""

    async def ping(self) -> None:
        """Raise if the store cannot answer (readiness check)."""

    async def get_nonce(self, address: str) -> str | None:
        """The last accepted nonce of ``address`` as received, or None."""

    async def advance_nonce(self, address: str, sort_key: str, nonce: str) -> bool:
        """Store ``nonce`` if its ``sort_key`` is strictly greater than the stored one.

        Returns True when stored (first nonce or a greater one), False otherwise.
        Check and write are one atomic step.
        """

    async def revoke_token(self, token_id: str, expires_at: int) -> None:
        """Mark a token (by its id, a hash of the token) as revoked until it expires."""

    async def unrevoke_token(self, token_id: str) -> None:
        """Remove a revocation (the reference restores a re-created token)."""

    async def is_token_revoked(self, token_id: str) -> bool:
        """True if the token was revoked."""

    async def get_or_create_secret(self, name: str, candidate: str) -> str:
        """Return the secret stored under ``name``; store ``candidate`` if none exists.

        Concurrent callers all receive the same (first stored) value.
        """

    # --- DDO index (built-in indexer) ------------------------------------------
    async def put_ddo(
        self, did: str, chain_id: int, nft_address: str, document: str, block: int,
        log_index: int,
    ) -> bool:
        """Store a DDO unless a newer event (block, log index) already wrote it."""

    async def get_ddo(self, did: str) -> str | None:
        """The stored DDO JSON text, or None."""

    async def get_ddo_by_nft(self, chain_id: int, nft_address: str) -> tuple[str, str] | None:
        """(did, DDO JSON) of the asset of a data NFT, or None."""

    async def list_ddos(self) -> list[str]:
        """Every stored DDO JSON text."""

    async def ddo_changes_since(self, seq: int, limit: int) -> list[tuple[int, str, str]]:
        """Up to ``limit`` DDOs written after change ``seq``: (seq, did, JSON), by seq.

        Every successful :meth:`put_ddo` gives its row a new sequence number, greater
        than every number already visible to readers (rows from before the change feed
        existed have 0). A reader that remembers the last seq it saw and asks again
        gets every later write exactly once (the latest version of each row).
        """

    async def get_cursor(self, name: str) -> int | None:
        """The last fully processed block of an indexer."""

    async def set_cursor(self, name: str, block: int) -> None:
        """Record that an indexer processed everything up to ``block``."""

    async def try_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Take or renew a named lease for ``ttl_ms``; False if another holder has it."""

    # --- compute jobs ------------------------------------------------------------
    async def put_job(self, job_id: str, owner: str, document: str) -> None:
        """Create or replace a compute job record (JSON)."""

    async def get_job(self, job_id: str) -> str | None:
        """A job record (JSON), or None."""

    async def list_jobs(self, owner: str | None) -> list[str]:
        """Job records (JSON) of ``owner``, or of everyone when None, oldest first."""

    async def delete_job(self, job_id: str) -> None:
        """Forget a job record."""

    # --- escrow claims (fees.claim_queue) --------------------------------------------
    async def add_claim(self, job_id: str, chain_id: int, document: str, now_ms: int) -> bool:
        """Queue a pending claim, due at once; False (nothing changed) if the job has one."""

    async def take_claims(self, holder: str, now_ms: int, lease_ms: int, limit: int,
                          job_id: str | None = None) -> list[ClaimRow]:
        """Lease up to ``limit`` pending claims that are due and not leased by anyone.

        Due means ``next_attempt_ms <= now_ms``; with ``job_id`` only that claim is
        considered, due or not. Each row taken is leased to ``holder`` until
        ``now_ms + lease_ms`` in the same atomic step, so concurrent takers (other
        processes, other replicas) never get the same row.
        """

    async def mark_claim_sent(self, job_id: str, holder: str, tx_hash: str,
                              now_ms: int) -> bool:
        """Record the claim's transaction (still leased); False unless ``holder`` leases it."""

    async def retry_claim_later(self, job_id: str, holder: str, error: str,
                                next_attempt_ms: int, now_ms: int) -> bool:
        """Count a failed attempt, note ``error``, release the lease, due again later."""

    async def finish_claim(self, job_id: str, holder: str, state: str, tx_hash: str,
                           note: str, now_ms: int) -> bool:
        """Give the claim its final ``state`` and release the lease."""

    async def get_claim(self, job_id: str) -> ClaimRow | None:
        """The claim of a job, or None."""

    async def list_claims(self, state: str | None = None) -> list[ClaimRow]:
        """Claims in ``state`` (every claim when None), oldest first."""

    async def put_escrow_lock(self, job_id: str, document: str, now_ms: int) -> bool:
        """Remember a paid job's escrow lock (JSON); False if the job has one already."""

    async def get_escrow_lock(self, job_id: str) -> str | None:
        """A paid job's escrow lock (JSON), or None."""

    async def unclaimed_escrow_locks(self) -> list[EscrowLockRow]:
        """Every escrow lock whose job has no claim row yet, oldest first: the paid jobs
        still to settle (``commands/compute/settle.py``)."""

    # --- operator-service jobs (compute.engines.operator_service) -----------------
    async def put_operator_job(self, job_id: str, operator_job_id: str,
                               document: str) -> None:
        """Create or replace what Tidegate knows of an operator-service job."""

    async def get_operator_job(self, job_id: str) -> OperatorJobRow | None:
        """The row of Tidegate's ``job_id``, or None."""

    async def find_operator_jobs(self, operator_job_ids: list[str]) -> list[OperatorJobRow]:
        """The rows of these operator job ids (those that have one, any order)."""
