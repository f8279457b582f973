"""Schema migrations, applied in order at start-up by every store.

Each entry is a list of portable SQL statements (SQLite and PostgreSQL accept both
forms used here). Append new migrations; never edit an applied one.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE IF NOT EXISTS nonces (
            address TEXT PRIMARY KEY,
            sort_key TEXT NOT NULL,
            nonce TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS revoked_tokens (
            token_id TEXT PRIMARY KEY,
            expires_at BIGINT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS secrets (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
    ],
    [
        """CREATE TABLE IF NOT EXISTS ddos (
            did TEXT PRIMARY KEY,
            chain_id BIGINT NOT NULL,
            nft_address TEXT NOT NULL,
            document TEXT NOT NULL,
            block BIGINT NOT NULL,
            log_index BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS ddos_nft ON ddos (chain_id, nft_address)",
        """CREATE TABLE IF NOT EXISTS cursors (
            name TEXT PRIMARY KEY,
            block BIGINT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_ms BIGINT NOT NULL
        )""",
    ],
    [
        """CREATE TABLE IF NOT EXISTS compute_jobs (
            job_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            document TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS compute_jobs_owner ON compute_jobs (owner)",
    ],
]
