"""SQLite store (the default): one file under the data directory.

WAL mode lets readers run beside the single writer; every write is one statement,
so SQLite's own locking makes check-and-advance atomic across worker processes.

Writes go through aiosqlite's thread, one hop per statement. Hot point reads (a nonce,
a DDO, a revoked token, a job) run on the event loop on a second, read-only
connection: under WAL a reader never waits for a writer, and a primary-key lookup
takes microseconds, less than the thread hop it replaces. If that connection ever
reports busy, the read falls back to the thread.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from tidegate.errors import ServiceUnavailableError
from tidegate.stores.base import CLAIM_PENDING, ClaimRow, EscrowLockRow, OperatorJobRow
from tidegate.stores.boundary import translate_unavailable
from tidegate.stores.migrations import MIGRATIONS

# Primary result codes of a database that cannot serve now (busy or locked past the
# timeout, out of memory, read-only, I/O error, corrupt, disk full, cannot open,
# locking protocol); anything else (no such table, a constraint) is a bug.
_UNAVAILABLE_CODES = frozenset({5, 6, 7, 8, 10, 11, 13, 14, 15})


def _unavailable(exc: Exception) -> bool:
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return isinstance(code, int) and code & 0xFF in _UNAVAILABLE_CODES
    return False


@translate_unavailable(_unavailable)
class SqliteStore:
    """Store backed by an SQLite database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._reader: sqlite3.Connection | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise ServiceUnavailableError("store is not open")
        return self._db

    async def open(self) -> None:
        # aiosqlite logs every statement with its parameters at DEBUG, and those
        # include decrypted DDOs and nonces: never let them reach a log.
        logging.getLogger("aiosqlite").setLevel(logging.INFO)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every statement is its own transaction. Requests share this
        # connection; a deferred transaction left open by one request's read would make
        # another request's write (or another worker's) fail with "database is locked".
        # Each write here is a single atomic statement, so nothing needs more.
        self._db = await aiosqlite.connect(self.path, timeout=30, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA busy_timeout=30000")
        await self._migrate()
        # Opened here, on the event loop's thread, and only ever used there.
        self._reader = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                       isolation_level=None, timeout=0)
        self._reader.execute("PRAGMA query_only=1")

    async def _migrate(self) -> None:
        db = self.db
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
            )
            async with db.execute("SELECT MAX(version) FROM schema_version") as cur:
                row = await cur.fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            for version, statements in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                for statement in statements:
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            await db.commit()
        except BaseException:
            await db.rollback()
            raise

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def ping(self) -> None:
        await self.db.execute_fetchall("SELECT 1")

    async def _write(self, sql: str, params: Sequence[object]) -> int:
        """Run one write statement (its own transaction); the number of rows changed."""
        cursor = await self.db.execute(sql, params)
        return int(cursor.rowcount)

    async def _read_one(self, sql: str, params: Sequence[object]) -> sqlite3.Row | None:
        """The first row of a point read, on the loop when the reader is free."""
        if self._reader is not None:
            try:
                # fetchall: step the statement to its end, so no read transaction
                # stays open and holds back WAL checkpoints.
                rows = self._reader.execute(sql, params).fetchall()
            except sqlite3.OperationalError:
                pass  # busy (e.g. WAL recovery by another process): use the thread
            else:
                return rows[0] if rows else None
        rows = list(await self.db.execute_fetchall(sql, params))
        return rows[0] if rows else None

    async def _read_all(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        return list(await self.db.execute_fetchall(sql, params))

    async def get_nonce(self, address: str) -> str | None:
        row = await self._read_one("SELECT nonce FROM nonces WHERE address = ?", (address,))
        return str(row[0]) if row else None

    async def advance_nonce(self, address: str, sort_key: str, nonce: str) -> bool:
        changed = await self._write(
            "INSERT INTO nonces (address, sort_key, nonce) VALUES (?, ?, ?) "
            "ON CONFLICT (address) DO UPDATE SET sort_key = excluded.sort_key, "
            "nonce = excluded.nonce WHERE nonces.sort_key < excluded.sort_key",
            (address, sort_key, nonce),
        )
        return changed == 1

    async def revoke_token(self, token_id: str, expires_at: int) -> None:
        await self._write(
            "INSERT INTO revoked_tokens (token_id, expires_at) VALUES (?, ?) "
            "ON CONFLICT (token_id) DO NOTHING",
            (token_id, expires_at),
        )
        # Expired revocations can never matter again (the token fails on `exp`).
        await self._write(
            "DELETE FROM revoked_tokens WHERE expires_at < ?", (int(time.time()) - 3600,)
        )

    async def unrevoke_token(self, token_id: str) -> None:
        await self._write("DELETE FROM revoked_tokens WHERE token_id = ?", (token_id,))

    async def is_token_revoked(self, token_id: str) -> bool:
        row = await self._read_one("SELECT 1 FROM revoked_tokens WHERE token_id = ?",
                                   (token_id,))
        return row is not None

    async def get_or_create_secret(self, name: str, candidate: str) -> str:
        await self._write(
            "INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (name, candidate),
        )
        rows = await self._read_all("SELECT value FROM secrets WHERE name = ?", (name,))
        return str(rows[0][0])

    async def put_ddo(
        self, did: str, chain_id: int, nft_address: str, document: str, block: int,
        log_index: int,
    ) -> bool:
        changed = await self._write(
            # One statement under SQLite's write lock: MAX(seq) + 1 is unique and
            # greater than every committed seq (the change feed's order).
            "INSERT INTO ddos (did, chain_id, nft_address, document, block, log_index, seq) "
            "VALUES (?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM ddos)) "
            "ON CONFLICT (did) DO UPDATE SET "
            "document = excluded.document, block = excluded.block, "
            "log_index = excluded.log_index, nft_address = excluded.nft_address, "
            "seq = excluded.seq "
            "WHERE (ddos.block, ddos.log_index) <= (excluded.block, excluded.log_index)",
            (did, chain_id, nft_address, document, block, log_index),
        )
        return changed == 1

    async def get_ddo(self, did: str) -> str | None:
        row = await self._read_one("SELECT document FROM ddos WHERE did = ?", (did,))
        return str(row[0]) if row else None

    async def get_ddo_by_nft(self, chain_id: int, nft_address: str) -> tuple[str, str] | None:
        row = await self._read_one(
            "SELECT did, document FROM ddos WHERE chain_id = ? AND nft_address = ?",
            (chain_id, nft_address),
        )
        return (str(row[0]), str(row[1])) if row else None

    async def list_ddos(self) -> list[str]:
        rows = await self._read_all("SELECT document FROM ddos ORDER BY block, log_index")
        return [str(row[0]) for row in rows]

    async def ddo_changes_since(self, seq: int, limit: int) -> list[tuple[int, str, str]]:
        sql = "SELECT seq, did, document FROM ddos WHERE seq > ? ORDER BY seq LIMIT ?"
        rows: list[sqlite3.Row] | None = None
        if self._reader is not None:
            try:
                # On the loop: when nothing changed (the usual case) this index probe
                # takes microseconds, far less than a hop to aiosqlite's thread.
                rows = self._reader.execute(sql, (seq, limit)).fetchall()
            except sqlite3.OperationalError:
                rows = None
        if rows is None:
            rows = await self._read_all(sql, (seq, limit))
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def get_cursor(self, name: str) -> int | None:
        rows = await self._read_all("SELECT block FROM cursors WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else None

    async def set_cursor(self, name: str, block: int) -> None:
        await self._write(
            "INSERT INTO cursors (name, block) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET block = excluded.block",
            (name, block),
        )

    async def try_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        now = int(time.time() * 1000)
        taken = await self._write(
            "INSERT INTO leases (name, holder, expires_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires_ms = excluded.expires_ms "
            "WHERE leases.holder = excluded.holder OR leases.expires_ms < ?",
            (name, holder, now + ttl_ms, now),
        )
        return taken == 1

    async def put_job(self, job_id: str, owner: str, document: str) -> None:
        await self._write(
            "INSERT INTO compute_jobs (job_id, owner, document) VALUES (?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET document = excluded.document",
            (job_id, owner, document),
        )

    async def get_job(self, job_id: str) -> str | None:
        row = await self._read_one("SELECT document FROM compute_jobs WHERE job_id = ?",
                                   (job_id,))
        return str(row[0]) if row else None

    async def list_jobs(self, owner: str | None) -> list[str]:
        if owner is None:
            rows = await self._read_all("SELECT document FROM compute_jobs ORDER BY rowid")
        else:
            rows = await self._read_all(
                "SELECT document FROM compute_jobs WHERE owner = ? ORDER BY rowid", (owner,))
        return [str(row[0]) for row in rows]

    async def delete_job(self, job_id: str) -> None:
        await self._write("DELETE FROM compute_jobs WHERE job_id = ?", (job_id,))

    # --- escrow claims -------------------------------------------------------------
    async def add_claim(self, job_id: str, chain_id: int, document: str, now_ms: int) -> bool:
        changed = await self._write(
            "INSERT INTO escrow_claims (job_id, chain_id, state, next_attempt_ms, document, "
            "created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id) DO NOTHING",
            (job_id, chain_id, CLAIM_PENDING, now_ms, document, now_ms, now_ms),
        )
        return changed == 1

    async def take_claims(self, holder: str, now_ms: int, lease_ms: int, limit: int,
                          job_id: str | None = None) -> list[ClaimRow]:
        # One statement under SQLite's write lock: the rows chosen are leased before
        # any other writer (another worker process) can choose them.
        due = "job_id = ?" if job_id is not None else "next_attempt_ms <= ?"
        sql = _TAKE_CLAIMS.replace("$DUE", due)
        rows = await self._read_all(
            sql, (holder, now_ms + lease_ms, now_ms, CLAIM_PENDING, now_ms,
                  job_id if job_id is not None else now_ms, limit))
        return sorted((_claim_row(r) for r in rows), key=lambda c: c.next_attempt_ms)

    async def mark_claim_sent(self, job_id: str, holder: str, tx_hash: str,
                              now_ms: int) -> bool:
        changed = await self._write(
            "UPDATE escrow_claims SET tx_hash = ?, updated_ms = ? "
            "WHERE job_id = ? AND lease_holder = ? AND state = ?",
            (tx_hash, now_ms, job_id, holder, CLAIM_PENDING),
        )
        return changed == 1

    async def retry_claim_later(self, job_id: str, holder: str, error: str,
                                next_attempt_ms: int, now_ms: int) -> bool:
        changed = await self._write(
            "UPDATE escrow_claims SET attempts = attempts + 1, last_error = ?, "
            "next_attempt_ms = ?, lease_holder = '', lease_until_ms = 0, updated_ms = ? "
            "WHERE job_id = ? AND lease_holder = ? AND state = ?",
            (error, next_attempt_ms, now_ms, job_id, holder, CLAIM_PENDING),
        )
        return changed == 1

    async def finish_claim(self, job_id: str, holder: str, state: str, tx_hash: str,
                           note: str, now_ms: int) -> bool:
        changed = await self._write(
            "UPDATE escrow_claims SET state = ?, tx_hash = ?, last_error = ?, "
            "attempts = attempts + 1, lease_holder = '', lease_until_ms = 0, updated_ms = ? "
            "WHERE job_id = ? AND lease_holder = ? AND state = ?",
            (state, tx_hash, note, now_ms, job_id, holder, CLAIM_PENDING),
        )
        return changed == 1

    async def get_claim(self, job_id: str) -> ClaimRow | None:
        rows = await self._read_all(
            "SELECT job_id, chain_id, state, attempts, next_attempt_ms, tx_hash, "
            "last_error, document FROM escrow_claims WHERE job_id = ?", (job_id,))
        return _claim_row(rows[0]) if rows else None

    async def list_claims(self, state: str | None = None) -> list[ClaimRow]:
        if state is None:
            rows = await self._read_all(
                "SELECT job_id, chain_id, state, attempts, next_attempt_ms, tx_hash, "
                "last_error, document FROM escrow_claims ORDER BY created_ms, job_id")
        else:
            rows = await self._read_all(
                "SELECT job_id, chain_id, state, attempts, next_attempt_ms, tx_hash, "
                "last_error, document FROM escrow_claims WHERE state = ? "
                "ORDER BY created_ms, job_id", (state,))
        return [_claim_row(r) for r in rows]

    async def put_escrow_lock(self, job_id: str, document: str, now_ms: int) -> bool:
        changed = await self._write(
            "INSERT INTO escrow_locks (job_id, document, created_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (job_id) DO NOTHING", (job_id, document, now_ms))
        return changed == 1

    async def get_escrow_lock(self, job_id: str) -> str | None:
        row = await self._read_one("SELECT document FROM escrow_locks WHERE job_id = ?",
                                   (job_id,))
        return str(row[0]) if row else None

    async def unclaimed_escrow_locks(self) -> list[EscrowLockRow]:
        rows = await self._read_all(
            "SELECT l.job_id, l.document, l.created_ms FROM escrow_locks l "
            "LEFT JOIN escrow_claims c ON c.job_id = l.job_id WHERE c.job_id IS NULL "
            "ORDER BY l.created_ms, l.job_id")
        return [EscrowLockRow(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def put_operator_job(self, job_id: str, operator_job_id: str,
                               document: str) -> None:
        await self._write(
            "INSERT INTO operator_jobs (job_id, operator_job_id, document) VALUES (?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET operator_job_id = excluded.operator_job_id, "
            "document = excluded.document", (job_id, operator_job_id, document))

    async def get_operator_job(self, job_id: str) -> OperatorJobRow | None:
        rows = await self._read_all(
            "SELECT job_id, operator_job_id, document FROM operator_jobs WHERE job_id = ?",
            (job_id,))
        return OperatorJobRow(str(rows[0][0]), str(rows[0][1]), str(rows[0][2])) \
            if rows else None

    async def find_operator_jobs(self, operator_job_ids: list[str]) -> list[OperatorJobRow]:
        if not operator_job_ids:
            return []
        rows = await self._read_all(
            "SELECT job_id, operator_job_id, document FROM operator_jobs "
            "WHERE operator_job_id IN (SELECT value FROM json_each(?))",
            (json.dumps(operator_job_ids),))
        return [OperatorJobRow(str(r[0]), str(r[1]), str(r[2])) for r in rows]


_TAKE_CLAIMS = (
    "UPDATE escrow_claims SET lease_holder = ?, lease_until_ms = ?, updated_ms = ? "
    "WHERE job_id IN (SELECT job_id FROM escrow_claims WHERE state = ? AND "
    "lease_until_ms <= ? AND $DUE ORDER BY next_attempt_ms LIMIT ?) "
    "RETURNING job_id, chain_id, state, attempts, next_attempt_ms, tx_hash, last_error, "
    "document")


def _claim_row(row: Sequence[object]) -> ClaimRow:
    return ClaimRow(str(row[0]), int(str(row[1])), str(row[2]), int(str(row[3])),
                    int(str(row[4])), str(row[5]), str(row[6]), str(row[7]))
