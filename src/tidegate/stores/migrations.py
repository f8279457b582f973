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
    [
        # Change feed of the DDO table (the query engine's in-memory index follows it):
        # every put_ddo gives its row a new, strictly increasing ``seq``. Rows stored
        # before this migration keep 0, so a reader starting below 0 sees them too.
        "ALTER TABLE ddos ADD COLUMN seq BIGINT NOT NULL DEFAULT 0",
        "CREATE INDEX IF NOT EXISTS ddos_seq ON ddos (seq)",
        # PostgreSQL draws seq from this one-row counter inside the upsert: its row lock
        # orders writers, so seq order is commit order and a reader never skips a row.
        """CREATE TABLE IF NOT EXISTS ddo_seq (
            id INTEGER PRIMARY KEY,
            value BIGINT NOT NULL
        )""",
        "INSERT INTO ddo_seq (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    ],
    [
        # Escrow claims owed by finished paid compute jobs (fees.claim_queue): one row
        # per job, kept until the lock is claimed or gone. ``document`` holds what the
        # claim sends (lock id, token, payer, amount, proof); a worker leases a row
        # (holder, until) before it touches the chain, so two never send one claim.
        """CREATE TABLE IF NOT EXISTS escrow_claims (
            job_id TEXT PRIMARY KEY,
            chain_id BIGINT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_ms BIGINT NOT NULL,
            lease_holder TEXT NOT NULL DEFAULT '',
            lease_until_ms BIGINT NOT NULL DEFAULT 0,
            tx_hash TEXT NOT NULL DEFAULT '',
            last_error TEXT NOT NULL DEFAULT '',
            document TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            updated_ms BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS escrow_claims_due ON escrow_claims (state, next_attempt_ms)",
        # The escrow lock of each paid job (fees.escrow_payments.JobPayment as JSON), so
        # the job is settled from its id alone when it ends.
        """CREATE TABLE IF NOT EXISTS escrow_locks (
            job_id TEXT PRIMARY KEY,
            document TEXT NOT NULL,
            created_ms BIGINT NOT NULL
        )""",
    ],
    [
        # What Tidegate knows of each Ocean Node protocol job it started on the
        # operator-service engine (the operator keeps no protocol, free flag, resources
        # or maximum duration): Tidegate's job id (its escrow lock's) -> the operator's.
        """CREATE TABLE IF NOT EXISTS operator_jobs (
            job_id TEXT PRIMARY KEY,
            operator_job_id TEXT NOT NULL,
            document TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS operator_jobs_operator ON operator_jobs (operator_job_id)",
    ],
]
