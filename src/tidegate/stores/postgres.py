"""PostgreSQL store: state shared by several Tidegate replicas.

Each operation is one statement on a pooled connection; the nonce upsert's
``WHERE`` clause makes check-and-advance atomic under concurrency.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import asyncpg

from tidegate.errors import ServiceUnavailableError
from tidegate.stores.base import CLAIM_PENDING, ClaimRow, EscrowLockRow, OperatorJobRow
from tidegate.stores.boundary import translate_unavailable
from tidegate.stores.migrations import MIGRATIONS

# Serialises schema migration between replicas starting at the same time.
_MIGRATION_LOCK_ID = 0x7469646567617465  # "tidegate"


def _unavailable(exc: Exception) -> bool:
    """The server is unreachable, restarting, shutting down or out of resources (not a
    bug: a statement error or a wrong parameter type stays a 500)."""
    return isinstance(exc, OSError | asyncpg.PostgresConnectionError
                      | asyncpg.exceptions.OperatorInterventionError
                      | asyncpg.exceptions.InsufficientResourcesError) or (
        # the pool's connection was lost mid-operation or the pool is closing
        isinstance(exc, asyncpg.InterfaceError)
        and not isinstance(exc, asyncpg.exceptions.DataError))


@translate_unavailable(_unavailable)
class PostgresStore:
    """Store backed by a PostgreSQL database (``postgresql://`` URL)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise ServiceUnavailableError("store is not open")
        return self._pool

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self.min_size, max_size=self.max_size, timeout=10
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise ServiceUnavailableError("database is unavailable") from exc
        await self._migrate()

    async def _migrate(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_ID)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
            )
            current = await conn.fetchval("SELECT MAX(version) FROM schema_version") or 0
            for version, statements in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def get_nonce(self, address: str) -> str | None:
        value = await self.pool.fetchval("SELECT nonce FROM nonces WHERE address = $1", address)
        return None if value is None else str(value)

    async def advance_nonce(self, address: str, sort_key: str, nonce: str) -> bool:
        row = await self.pool.fetchval(
            "INSERT INTO nonces (address, sort_key, nonce) VALUES ($1, $2, $3) "
            "ON CONFLICT (address) DO UPDATE SET sort_key = excluded.sort_key, "
            "nonce = excluded.nonce WHERE nonces.sort_key < excluded.sort_key "
            "RETURNING address",
            address,
            sort_key,
            nonce,
        )
        return row is not None

    async def revoke_token(self, token_id: str, expires_at: int) -> None:
        await self.pool.execute(
            "INSERT INTO revoked_tokens (token_id, expires_at) VALUES ($1, $2) "
            "ON CONFLICT (token_id) DO NOTHING",
            token_id,
            expires_at,
        )
        await self.pool.execute(
            "DELETE FROM revoked_tokens WHERE expires_at < $1", int(time.time()) - 3600
        )

    async def unrevoke_token(self, token_id: str) -> None:
        await self.pool.execute("DELETE FROM revoked_tokens WHERE token_id = $1", token_id)

    async def is_token_revoked(self, token_id: str) -> bool:
        value = await self.pool.fetchval(
            "SELECT 1 FROM revoked_tokens WHERE token_id = $1", token_id
        )
        return value is not None

    async def get_or_create_secret(self, name: str, candidate: str) -> str:
        await self.pool.execute(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            name,
            candidate,
        )
        value = await self.pool.fetchval("SELECT value FROM secrets WHERE name = $1", name)
        return str(value)

    async def put_ddo(
        self, did: str, chain_id: int, nft_address: str, document: str, block: int,
        log_index: int,
    ) -> bool:
        row = await self.pool.fetchval(
            # seq comes from the one-row counter: its row lock, held until this
            # statement commits, makes concurrent writers commit in seq order, so a
            # replica reading "seq > last seen" never skips a row committed later.
            "WITH next AS (UPDATE ddo_seq SET value = value + 1 WHERE id = 1 "
            "RETURNING value) "
            "INSERT INTO ddos (did, chain_id, nft_address, document, block, log_index, seq) "
            "SELECT $1, $2, $3, $4, $5, $6, next.value FROM next "
            "ON CONFLICT (did) DO UPDATE SET "
            "document = excluded.document, block = excluded.block, "
            "log_index = excluded.log_index, nft_address = excluded.nft_address, "
            "seq = excluded.seq "
            "WHERE (ddos.block, ddos.log_index) <= (excluded.block, excluded.log_index) "
            "RETURNING did",
            did, chain_id, nft_address, document, block, log_index,
        )
        return row is not None

    async def get_ddo(self, did: str) -> str | None:
        value = await self.pool.fetchval("SELECT document FROM ddos WHERE did = $1", did)
        return None if value is None else str(value)

    async def get_ddo_by_nft(self, chain_id: int, nft_address: str) -> tuple[str, str] | None:
        row = await self.pool.fetchrow(
            "SELECT did, document FROM ddos WHERE chain_id = $1 AND nft_address = $2",
            chain_id, nft_address,
        )
        return (str(row[0]), str(row[1])) if row else None

    async def list_ddos(self) -> list[str]:
        rows = await self.pool.fetch("SELECT document FROM ddos ORDER BY block, log_index")
        return [str(row[0]) for row in rows]

    async def ddo_changes_since(self, seq: int, limit: int) -> list[tuple[int, str, str]]:
        rows = await self.pool.fetch(
            "SELECT seq, did, document FROM ddos WHERE seq > $1 ORDER BY seq LIMIT $2",
            seq, limit,
        )
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def get_cursor(self, name: str) -> int | None:
        value = await self.pool.fetchval("SELECT block FROM cursors WHERE name = $1", name)
        return None if value is None else int(value)

    async def set_cursor(self, name: str, block: int) -> None:
        await self.pool.execute(
            "INSERT INTO cursors (name, block) VALUES ($1, $2) "
            "ON CONFLICT (name) DO UPDATE SET block = excluded.block",
            name, block,
        )

    async def try_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        now = int(time.time() * 1000)
        row = await self.pool.fetchval(
            "INSERT INTO leases (name, holder, expires_ms) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires_ms = excluded.expires_ms "
            "WHERE leases.holder = excluded.holder OR leases.expires_ms < $4 "
            "RETURNING name",
            name, holder, now + ttl_ms, now,
        )
        return row is not None

    async def put_job(self, job_id: str, owner: str, document: str) -> None:
        await self.pool.execute(
            "INSERT INTO compute_jobs (job_id, owner, document) VALUES ($1, $2, $3) "
            "ON CONFLICT (job_id) DO UPDATE SET document = excluded.document",
            job_id, owner, document,
        )

    async def get_job(self, job_id: str) -> str | None:
        value = await self.pool.fetchval(
            "SELECT document FROM compute_jobs WHERE job_id = $1", job_id)
        return None if value is None else str(value)

    async def list_jobs(self, owner: str | None) -> list[str]:
        if owner is None:
            rows = await self.pool.fetch("SELECT document FROM compute_jobs ORDER BY ctid")
        else:
            rows = await self.pool.fetch(
                "SELECT document FROM compute_jobs WHERE owner = $1 ORDER BY ctid", owner)
        return [str(row[0]) for row in rows]

    async def delete_job(self, job_id: str) -> None:
        await self.pool.execute("DELETE FROM compute_jobs WHERE job_id = $1", job_id)

    # --- escrow claims -------------------------------------------------------------
    async def add_claim(self, job_id: str, chain_id: int, document: str, now_ms: int) -> bool:
        row = await self.pool.fetchval(
            "INSERT INTO escrow_claims (job_id, chain_id, state, next_attempt_ms, document, "
            "created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $6) "
            "ON CONFLICT (job_id) DO NOTHING RETURNING job_id",
            job_id, chain_id, CLAIM_PENDING, now_ms, document, now_ms,
        )
        return row is not None

    async def take_claims(self, holder: str, now_ms: int, lease_ms: int, limit: int,
                          job_id: str | None = None) -> list[ClaimRow]:
        # SKIP LOCKED: a row another replica is leasing right now is passed over, not
        # waited for; the lease columns keep it from being chosen again afterwards.
        due = "next_attempt_ms <= $5" if job_id is None else "job_id = $5"
        key: int | str = now_ms if job_id is None else job_id
        rows = await self.pool.fetch(_TAKE_CLAIMS.replace("$DUE", due),
                                     holder, now_ms, lease_ms, CLAIM_PENDING, key, limit)
        return sorted((_claim_row(r) for r in rows), key=lambda c: c.next_attempt_ms)

    async def mark_claim_sent(self, job_id: str, holder: str, tx_hash: str,
                              now_ms: int) -> bool:
        row = await self.pool.fetchval(
            "UPDATE escrow_claims SET tx_hash = $1, updated_ms = $2 "
            "WHERE job_id = $3 AND lease_holder = $4 AND state = $5 RETURNING job_id",
            tx_hash, now_ms, job_id, holder, CLAIM_PENDING,
        )
        return row is not None

    async def retry_claim_later(self, job_id: str, holder: str, error: str,
                                next_attempt_ms: int, now_ms: int) -> bool:
        row = await self.pool.fetchval(
            "UPDATE escrow_claims SET attempts = attempts + 1, last_error = $1, "
            "next_attempt_ms = $2, lease_holder = '', lease_until_ms = 0, updated_ms = $3 "
            "WHERE job_id = $4 AND lease_holder = $5 AND state = $6 RETURNING job_id",
            error, next_attempt_ms, now_ms, job_id, holder, CLAIM_PENDING,
        )
        return row is not None

    async def finish_claim(self, job_id: str, holder: str, state: str, tx_hash: str,
                           note: str, now_ms: int) -> bool:
        row = await self.pool.fetchval(
            "UPDATE escrow_claims SET state = $1, tx_hash = $2, last_error = $3, "
            "attempts = attempts + 1, lease_holder = '', lease_until_ms = 0, updated_ms = $4 "
            "WHERE job_id = $5 AND lease_holder = $6 AND state = $7 RETURNING job_id",
            state, tx_hash, note, now_ms, job_id, holder, CLAIM_PENDING,
        )
        return row is not None

    async def get_claim(self, job_id: str) -> ClaimRow | None:
        row = await self.pool.fetchrow(
            "SELECT job_id, chain_id, state, attempts, next_attempt_ms, tx_hash, "
            "last_error, document FROM escrow_claims WHERE job_id = $1", job_id)
        return _claim_row(row) if row else None

    async def list_claims(self, state: str | None = None) -> list[ClaimRow]:
        if state is None:
            rows = await self.pool.fetch(
                "SELECT job_id, chain_id, state, attempts, next_attempt_ms, tx_hash, "
                "last_error, document FROM escrow_claims ORDER BY created_ms, job_id")
        else:
            rows = await self.pool.fetch(
                "SELECT job_id, chain_id, state, attempts, next_attempt_ms, tx_hash, "
                "last_error, document FROM escrow_claims WHERE state = $1 "
                "ORDER BY created_ms, job_id", state)
        return [_claim_row(r) for r in rows]

    async def put_escrow_lock(self, job_id: str, document: str, now_ms: int) -> bool:
        row = await self.pool.fetchval(
            "INSERT INTO escrow_locks (job_id, document, created_ms) VALUES ($1, $2, $3) "
            "ON CONFLICT (job_id) DO NOTHING RETURNING job_id", job_id, document, now_ms)
        return row is not None

    async def get_escrow_lock(self, job_id: str) -> str | None:
        value = await self.pool.fetchval(
            "SELECT document FROM escrow_locks WHERE job_id = $1", job_id)
        return None if value is None else str(value)

    async def unclaimed_escrow_locks(self) -> list[EscrowLockRow]:
        rows = await self.pool.fetch(
            "SELECT l.job_id, l.document, l.created_ms FROM escrow_locks l "
            "LEFT JOIN escrow_claims c ON c.job_id = l.job_id WHERE c.job_id IS NULL "
            "ORDER BY l.created_ms, l.job_id")
        return [EscrowLockRow(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def put_operator_job(self, job_id: str, operator_job_id: str,
                               document: str) -> None:
        await self.pool.execute(
            "INSERT INTO operator_jobs (job_id, operator_job_id, document) "
            "VALUES ($1, $2, $3) ON CONFLICT (job_id) DO UPDATE SET "
            "operator_job_id = excluded.operator_job_id, document = excluded.document",
            job_id, operator_job_id, document)

    async def get_operator_job(self, job_id: str) -> OperatorJobRow | None:
        row = await self.pool.fetchrow(
            "SELECT job_id, operator_job_id, document FROM operator_jobs WHERE job_id = $1",
            job_id)
        return None if row is None else OperatorJobRow(str(row[0]), str(row[1]), str(row[2]))

    async def find_operator_jobs(self, operator_job_ids: list[str]) -> list[OperatorJobRow]:
        if not operator_job_ids:
            return []
        rows = await self.pool.fetch(
            "SELECT job_id, operator_job_id, document FROM operator_jobs "
            "WHERE operator_job_id = ANY($1::text[])", operator_job_ids)
        return [OperatorJobRow(str(r[0]), str(r[1]), str(r[2])) for r in rows]


_TAKE_CLAIMS = (
    "UPDATE escrow_claims SET lease_holder = $1, lease_until_ms = $2 + $3, "
    "updated_ms = $2 WHERE job_id IN (SELECT job_id FROM escrow_claims "
    "WHERE state = $4 AND lease_until_ms <= $2 AND $DUE "
    "ORDER BY next_attempt_ms LIMIT $6 FOR UPDATE SKIP LOCKED) "
    "RETURNING job_id, chain_id, state, attempts, next_attempt_ms, tx_hash, last_error, "
    "document")


def _claim_row(row: Sequence[object]) -> ClaimRow:
    return ClaimRow(str(row[0]), int(str(row[1])), str(row[2]), int(str(row[3])),
                    int(str(row[4])), str(row[5]), str(row[6]), str(row[7]))
