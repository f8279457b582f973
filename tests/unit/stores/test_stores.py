"""The same store tests against SQLite and PostgreSQL."""

import asyncio
import sqlite3
from pathlib import Path

from tests.conftest import open_store
from tidegate.auth.nonces import parse_nonce, sort_key
from tidegate.stores.sqlite import SqliteStore


def key(raw: str) -> str:
    return sort_key(parse_nonce(raw))


async def test_advance_nonce_strictly_increasing(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    try:
        assert await store.get_nonce("0xA") is None
        assert await store.advance_nonce("0xA", key("5"), "5")
        assert not await store.advance_nonce("0xA", key("5"), "5")
        assert not await store.advance_nonce("0xA", key("4"), "4")
        assert not await store.advance_nonce("0xA", key("5.0"), "5.0")
        assert await store.advance_nonce("0xA", key("5.1"), "5.1")
        assert await store.get_nonce("0xA") == "5.1"
        assert await store.get_nonce("0xB") is None
    finally:
        await store.close()


async def test_concurrent_same_nonce_exactly_one_wins(store_url: str) -> None:
    stores = [open_store(store_url) for _ in range(5)]
    for s in stores:
        await s.open()
    try:
        results = await asyncio.gather(
            *(stores[i % 5].advance_nonce("0xC", key("42"), "42") for i in range(50))
        )
        assert sum(results) == 1
    finally:
        for s in stores:
            await s.close()


async def test_state_survives_reopen(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    await store.advance_nonce("0xD", key("9"), "9")
    await store.revoke_token("tok", 2**40)
    secret = await store.get_or_create_secret("s", "first")
    await store.close()

    again = open_store(store_url)
    await again.open()  # migrations are idempotent
    try:
        assert await again.get_nonce("0xD") == "9"
        assert await again.is_token_revoked("tok")
        assert await again.get_or_create_secret("s", "second") == secret == "first"
        await again.unrevoke_token("tok")
        assert not await again.is_token_revoked("tok")
        await again.ping()
    finally:
        await again.close()


async def test_a_write_by_another_process_is_read_at_once(store_url: str) -> None:
    # Two workers share the database: a nonce one advanced is what the other reads next.
    mine, theirs = open_store(store_url), open_store(store_url)
    await mine.open()
    await theirs.open()
    try:
        assert await mine.get_nonce("0xE") is None
        for n in ("1", "2", "3"):
            assert await theirs.advance_nonce("0xE", key(n), n)
            assert await mine.get_nonce("0xE") == n
        await theirs.put_ddo("did:op:e", 1, "0xNFT", "{}", 5, 0)
        assert await mine.get_ddo("did:op:e") == "{}"
        assert await mine.get_ddo_by_nft(1, "0xNFT") == ("did:op:e", "{}")
        await theirs.revoke_token("t-e", 2**40)
        assert await mine.is_token_revoked("t-e")
    finally:
        await mine.close()
        await theirs.close()


async def test_sqlite_reads_do_not_wait_for_an_open_write(tmp_path: Path) -> None:
    # Another process holds the write lock mid-transaction: reads on the event loop
    # still answer at once, with the last committed value.
    path = tmp_path / "dir with ? and #" / "store.db"
    store = SqliteStore(path)
    await store.open()
    try:
        await store.advance_nonce("0xF", key("1"), "1")
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE nonces SET nonce = '99' WHERE address = '0xF'")
        assert await asyncio.wait_for(store.get_nonce("0xF"), timeout=5) == "1"
        writer.execute("COMMIT")
        writer.close()
        assert await store.get_nonce("0xF") == "99"
    finally:
        await store.close()
