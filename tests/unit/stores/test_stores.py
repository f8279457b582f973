"""The same store tests against SQLite and PostgreSQL."""

import asyncio

from tests.conftest import open_store
from tidegate.auth.nonces import parse_nonce, sort_key


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
