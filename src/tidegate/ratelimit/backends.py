"""Where the workers' rate-limit buckets meet: Redis, PostgreSQL or an SQLite file.

Every backend applies one batch atomically: for each key, ``max(stored + step, tat)``
(µs since the epoch), stored and returned. A key expires once its TAT has passed
(a full bucket is the same as no key).

- **Redis** (``TIDEGATE_REDIS_URL``): one Lua script per batch (chunks of 500 keys),
  keys ``tidegate:rl:<class>:<kind>:<key>`` with ``PEXPIREAT`` at their TAT.
- **PostgreSQL** (``TIDEGATE_DATABASE_URL=postgresql://…``, no Redis): one upsert of
  the whole batch into the UNLOGGED table ``rate_limits``, keys in sorted order so two
  workers never deadlock.
- **SQLite** (the default): the file ``ratelimit.db`` beside the store's database, its
  own file so its writes never wait for (or hold up) the store's writer; one
  ``BEGIN IMMEDIATE`` transaction per batch on a thread of its own. This shares the
  limit between the workers of one machine.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from tidegate.ratelimit.buckets import SharedState
from tidegate.settings import RateLimitSettings

T = TypeVar("T")
_CHUNK = 500
_CLEAN_EVERY = 30.0  # seconds between deletions of expired rows (SQL backends)

REDIS_MERGE = """
local out = {}
for i = 1, #KEYS do
  local step = tonumber(ARGV[2 * i - 1])
  local tat = tonumber(ARGV[2 * i])
  local stored = redis.call('GET', KEYS[i])
  if stored then
    local grown = tonumber(stored) + step
    if grown > tat then tat = grown end
  end
  redis.call('SET', KEYS[i], string.format('%d', tat))
  redis.call('PEXPIREAT', KEYS[i], math.floor(tat / 1000) + 1000)
  out[i] = tat
end
return out
"""


class RedisState:
    """Buckets in Redis (``redis.asyncio``), merged by one Lua script per batch."""

    name = "redis"
    prefix = "tidegate:rl:"

    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        self.url = url
        self.timeout = timeout
        self._client: Any = None
        self._script: Any = None

    async def open(self) -> None:
        import redis.asyncio as redis  # only deployments that configure Redis need it

        # Connects lazily: a Redis that is down at start-up fails the batches, not the start.
        self._client = redis.Redis.from_url(
            self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
            health_check_interval=30)
        self._script = self._client.register_script(REDIS_MERGE)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def merge(self, rows: Sequence[tuple[str, int, int]]) -> list[int]:
        if self._script is None:
            raise ConnectionError("rate-limit backend is not open")
        out: list[int] = []
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            args: list[int] = []
            for _key, step, tat in chunk:
                args += (step, tat)
            result = await self._script(keys=[self.prefix + k for k, _s, _t in chunk],
                                        args=args)
            out.extend(int(v) for v in result)
        return out


_PG_TABLE = """CREATE UNLOGGED TABLE IF NOT EXISTS rate_limits (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL,
    step BIGINT NOT NULL DEFAULT 0
)"""
_PG_MERGE = """
INSERT INTO rate_limits AS r (key, step, tat)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) ORDER BY 1
ON CONFLICT (key) DO UPDATE SET tat = GREATEST(r.tat + excluded.step, excluded.tat),
                                step = excluded.step
RETURNING key, tat
"""
_PG_LOCK_ID = 0x7469646567617466  # creating the table: one replica at a time


class PostgresState:
    """Buckets in PostgreSQL (an UNLOGGED table: nothing of value is lost on a crash)."""

    name = "postgresql"

    def __init__(self, url: str, *, timeout: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.timeout = timeout
        self.clock = clock
        self._pool: asyncpg.Pool | None = None
        self._cleaned = 0.0

    async def open(self) -> None:
        pass  # the pool is made by the first batch, so a database down at start is no error

    async def _connected(self) -> asyncpg.Pool:
        if self._pool is None:
            pool = await asyncpg.create_pool(self.url, min_size=1, max_size=1,
                                             timeout=self.timeout)
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _PG_LOCK_ID)
                    await conn.execute(_PG_TABLE)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def merge(self, rows: Sequence[tuple[str, int, int]]) -> list[int]:
        pool = await self._connected()
        keys = [r[0] for r in rows]
        records = await pool.fetch(_PG_MERGE, keys, [r[1] for r in rows], [r[2] for r in rows],
                                   timeout=self.timeout)
        by_key = {str(rec[0]): int(rec[1]) for rec in records}
        now = self.clock()
        if now - self._cleaned >= _CLEAN_EVERY:
            self._cleaned = now
            await pool.execute("DELETE FROM rate_limits WHERE tat < $1", int(now * 1e6),
                               timeout=self.timeout)
        return [by_key[k] for k in keys]


class SqliteState:
    """Buckets in an SQLite file shared by the workers of one machine."""

    name = "sqlite"

    def __init__(self, path: Path, *, timeout: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.timeout = timeout
        self.clock = clock
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._cleaned = 0.0

    async def open(self) -> None:
        # One thread owns the connection; batches are rare enough to need no more.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="tidegate-ratelimit")

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            raise ConnectionError("rate-limit backend is not open")
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                 check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=OFF")  # counters: losing the last is fine
                db.execute("CREATE TABLE IF NOT EXISTS rate_limits "
                           "(key TEXT PRIMARY KEY, tat INTEGER NOT NULL) WITHOUT ROWID")
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _merge(self, rows: Sequence[tuple[str, int, int]]) -> list[int]:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            out = [int(db.execute(
                "INSERT INTO rate_limits (key, tat) VALUES (?1, ?2) ON CONFLICT (key) "
                "DO UPDATE SET tat = MAX(rate_limits.tat + ?3, excluded.tat) RETURNING tat",
                (key, tat, step)).fetchone()[0]) for key, step, tat in rows]
            now = self.clock()
            if now - self._cleaned >= _CLEAN_EVERY:
                self._cleaned = now
                db.execute("DELETE FROM rate_limits WHERE tat < ?", (int(now * 1e6),))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return out

    async def merge(self, rows: Sequence[tuple[str, int, int]]) -> list[int]:
        return await self._call(self._merge, rows)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def close(self) -> None:
        if self._thread is not None:
            await self._call(self._close)
            self._thread.shutdown(wait=False)
            self._thread = None


def shared_state(settings: RateLimitSettings, database_url: str | None,
                 sqlite_path: Path) -> SharedState:
    """Redis if configured, else the kind of database the store uses (``database_url``,
    ``TIDEGATE_DATABASE_URL``; ``sqlite_path``: the store's file when it is unset)."""
    if settings.redis_url:
        return RedisState(settings.redis_url)
    if database_url is not None and database_url.startswith("postgres"):
        return PostgresState(database_url)
    store_file = (Path(database_url.removeprefix("sqlite://")) if database_url is not None
                  else sqlite_path)
    return SqliteState(store_file.with_name("ratelimit.db"))
