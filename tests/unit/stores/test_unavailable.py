"""A database that is down answers 503 store_unavailable; a bug in a statement stays
a 500 (the driver's exception propagates); service recovers when the database is back."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import start_app
from tests.faults import CuttableProxy
from tidegate.settings import Settings
from tidegate.stores.boundary import StoreUnavailableError
from tidegate.stores.migrations import MIGRATIONS
from tidegate.stores.postgres import PostgresStore
from tidegate.stores.sqlite import SqliteStore

ADDRESS = "0x" + "ab" * 20


@pytest.fixture
async def proxied_pg_url(fresh_pg_url: str) -> AsyncIterator[tuple[str, CuttableProxy]]:
    parts = urlsplit(fresh_pg_url)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else \
        f"127.0.0.1:{proxy.port}"
    try:
        yield urlunsplit(parts._replace(netloc=netloc)), proxy
    finally:
        await proxy.close()


async def eventually(call: Callable[[], object], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            await call()  # type: ignore[misc]
            return
        except StoreUnavailableError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_postgres_down_is_unavailable_then_recovers(
        proxied_pg_url: tuple[str, CuttableProxy]) -> None:
    url, proxy = proxied_pg_url
    store = PostgresStore(url, min_size=1, max_size=2)
    await store.open()
    try:
        assert await store.advance_nonce(ADDRESS, "1", "1")
        await proxy.cut()
        for _ in range(3):  # lost connections, then refused ones
            with pytest.raises(StoreUnavailableError) as caught:
                await store.get_nonce(ADDRESS)
            assert caught.value.status == 503
            assert caught.value.code == "store_unavailable"
            assert str(proxy.port) not in caught.value.message
        await proxy.restore()
        await eventually(lambda: store.get_nonce(ADDRESS))
        assert await store.get_nonce(ADDRESS) == "1"
    finally:
        await store.close()


async def test_postgres_statement_errors_are_not_hidden(fresh_pg_url: str) -> None:
    # The schema is shared by the session's tests: hide the table, then restore it.
    store = PostgresStore(fresh_pg_url)
    await store.open()
    try:
        async with store.pool.acquire() as conn:
            await conn.execute("ALTER TABLE nonces RENAME TO nonces_hidden")
        try:
            with pytest.raises(Exception) as caught:
                await store.get_nonce(ADDRESS)
            assert not isinstance(caught.value, StoreUnavailableError)
        finally:
            async with store.pool.acquire() as conn:
                await conn.execute("ALTER TABLE nonces_hidden RENAME TO nonces")
    finally:
        # The schema is the session's: later tests (test_replay_postgres) need the table.
        async with store.pool.acquire() as conn:
            await conn.execute(MIGRATIONS[0][0])
        await store.close()


async def test_sqlite_full_is_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    await store.open()
    try:
        pages = (await store.db.execute_fetchall("PRAGMA page_count"))[0][0]
        await store.db.execute(f"PRAGMA max_page_count = {pages + 1}")
        with pytest.raises(StoreUnavailableError):
            await store.put_ddo("did:op:big", 8996, "0x" + "00" * 20, "x" * 200_000, 1, 0)
        assert await store.get_ddo("did:op:big") is None  # nothing half-written
    finally:
        await store.close()


async def test_sqlite_bug_is_not_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    await store.open()
    try:
        other = sqlite3.connect(tmp_path / "store.db")
        other.execute("DROP TABLE revoked_tokens")
        other.commit()
        other.close()
        with pytest.raises(sqlite3.OperationalError):
            await store.revoke_token("id", 1)
    finally:
        await store.close()


async def test_api_answers_503_while_postgres_is_down(
        proxied_pg_url: tuple[str, CuttableProxy],
        make_settings: Callable[..., Settings]) -> None:
    url, proxy = proxied_pg_url
    async for client in start_app(make_settings(TIDEGATE_DATABASE_URL=url)):
        did = "did:op:" + "cd" * 32
        assert (await client.get(f"/api/aquarius/assets/ddo/{did}")).status_code == 404
        await proxy.cut()
        r = await client.get(f"/api/aquarius/assets/ddo/{did}")
        assert r.status_code == 503
        assert r.json()["code"] == "store_unavailable"
        assert str(proxy.port) not in r.text
        ready = await client.get("/health/ready")
        assert (ready.status_code, ready.json()["store"]) == (503, "unavailable")
        await proxy.restore()
        for _ in range(100):
            r = await client.get(f"/api/aquarius/assets/ddo/{did}")
            if r.status_code != 503:
                break
            await asyncio.sleep(0.1)
        assert r.status_code == 404
        assert (await client.get("/health/ready")).json()["store"] == "ok"


async def test_postgres_restarted_under_load_gives_only_503s_then_recovers(
        proxied_pg_url: tuple[str, CuttableProxy],
        make_settings: Callable[..., Settings]) -> None:
    """Signed-request state under load while the database goes away twice: every answer
    is a success or a 503 (never a 500, never a hang), and no accepted nonce is lost."""
    from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, sign_like_ocean_js

    url, proxy = proxied_pg_url
    statuses: dict[int, int] = {}
    accepted: list[int] = []
    async for client in start_app(make_settings(TIDEGATE_DATABASE_URL=url)):
        stop = asyncio.Event()
        counter = iter(range(1, 1_000_000))

        async def worker() -> None:
            while not stop.is_set():
                nonce = next(counter)
                r = await client.get("/api/services/createAuthToken", params={
                    "address": CONSUMER_ADDRESS, "nonce": str(nonce),
                    "expiration": "4102444800",
                    "signature": sign_like_ocean_js(CONSUMER_ADDRESS + str(nonce),
                                                    CONSUMER_KEY)})
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    accepted.append(nonce)
                await client.get("/api/services/nonce",
                                 params={"userAddress": CONSUMER_ADDRESS})

        workers = [asyncio.create_task(worker()) for _ in range(8)]
        for _ in range(2):
            await asyncio.sleep(0.5)
            await proxy.cut()
            await asyncio.sleep(0.5)
            await proxy.restore()
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), timeout=30)
        r = await client.get("/api/services/nonce", params={"userAddress": CONSUMER_ADDRESS})
        assert r.status_code == 200
        assert r.json()["nonce"] >= max(accepted)
        nonce = str(r.json()["nonce"] + 1)  # recovered: the next signed request succeeds
        r = await client.get("/api/services/createAuthToken", params={
            "address": CONSUMER_ADDRESS, "nonce": nonce, "expiration": "4102444800",
            "signature": sign_like_ocean_js(CONSUMER_ADDRESS + nonce, CONSUMER_KEY)})
        assert r.status_code == 200, r.text
    # Nonces that lost the race to a higher one are 401s; the outage gives 503s.
    assert set(statuses) <= {200, 401, 503}, statuses
    assert statuses.get(503, 0) > 0 and statuses.get(200, 0) > 0, statuses
