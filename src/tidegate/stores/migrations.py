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
]
