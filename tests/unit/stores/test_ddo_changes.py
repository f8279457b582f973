"""The DDO change feed (seq on every put_ddo) and the search index following it,
against SQLite and PostgreSQL."""

import asyncio
import sqlite3
from pathlib import Path

import orjson

from tests.conftest import open_store
from tidegate.assets.search_index import SearchIndex
from tidegate.stores.migrations import MIGRATIONS
from tidegate.stores.sqlite import SqliteStore


def doc(n: int, chain: int = 1, name: str = "asset") -> str:
    return orjson.dumps({"id": f"did:op:{n}", "chainId": chain,
                         "metadata": {"name": f"{name} {n}", "type": "dataset"}}).decode()


async def test_every_put_gets_a_greater_seq(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    try:
        assert await store.ddo_changes_since(-1, 10) == []
        assert await store.put_ddo("did:op:1", 1, "0x1", doc(1), 5, 0)
        assert await store.put_ddo("did:op:2", 1, "0x2", doc(2), 5, 1)
        changes = await store.ddo_changes_since(-1, 10)
        assert [(did, text) for _, did, text in changes] == [("did:op:1", doc(1)),
                                                             ("did:op:2", doc(2))]
        first, second = changes[0][0], changes[1][0]
        assert 0 < first < second
        # an update moves the row to the end of the feed, with its new document
        assert await store.put_ddo("did:op:1", 1, "0x1", doc(1, 2), 6, 0)
        since = await store.ddo_changes_since(second, 10)
        assert [(did, text) for _, did, text in since] == [("did:op:1", doc(1, 2))]
        assert since[0][0] > second
        # an older event changes nothing, and adds nothing to the feed
        assert not await store.put_ddo("did:op:1", 1, "0x1", doc(1, 3), 4, 0)
        assert await store.ddo_changes_since(since[0][0], 10) == []
        # limit pages through the feed
        page = await store.ddo_changes_since(-1, 1)
        assert [did for _, did, _ in page] == ["did:op:2"]
    finally:
        await store.close()


async def test_concurrent_writers_never_skip_a_change(store_url: str) -> None:
    writers = [open_store(store_url) for _ in range(4)]
    reader = open_store(store_url)
    for s in [*writers, reader]:
        await s.open()
    try:
        seen: dict[str, str] = {}
        last = -1
        done = asyncio.Event()

        async def follow() -> None:
            nonlocal last
            while True:
                finished = done.is_set()
                for seq, did, text in await reader.ddo_changes_since(last, 7):
                    assert seq > last
                    last = seq
                    seen[did] = text
                if finished:
                    return
                await asyncio.sleep(0)

        async def write(i: int) -> None:
            await writers[i % 4].put_ddo(f"did:op:{i % 30}", 1, f"0x{i % 30}", doc(i), i, 0)

        follower = asyncio.create_task(follow())
        await asyncio.gather(*(write(i) for i in range(120)))
        done.set()
        await follower
        stored = {f"did:op:{n}": await reader.get_ddo(f"did:op:{n}") for n in range(30)}
        assert seen == stored
    finally:
        for s in [*writers, reader]:
            await s.close()


async def test_the_index_sees_a_put_from_another_store(store_url: str) -> None:
    mine, theirs = open_store(store_url), open_store(store_url)
    await mine.open()
    await theirs.open()
    try:
        for n in range(5):
            await mine.put_ddo(f"did:op:{n}", 1, f"0x{n}", doc(n, chain=1 + n % 2), n, 0)
        index = SearchIndex(mine, batch=2)  # pages through the feed
        body = {"query": {"query_string": {"query": "chainId:2 AND metadata.type:dataset"}}}
        assert sorted((await index.search(body)).dids) == ["did:op:1", "did:op:3"]
        # another replica writes: the very next answer has it
        await theirs.put_ddo("did:op:9", 1, "0x9", doc(9, chain=2, name="late"), 9, 0)
        assert sorted((await index.search(body)).dids) == ["did:op:1", "did:op:3", "did:op:9"]
        # and an update replaces the old version
        await theirs.put_ddo("did:op:1", 1, "0x1", doc(1, chain=1), 10, 0)
        assert sorted((await index.search(body)).dids) == ["did:op:3", "did:op:9"]
        late = await index.search({"query": {"match": {"metadata.name": "late"}}})
        assert late.dids == ["did:op:9"] and orjson.loads(late.hits[0][1])["chainId"] == 2
        assert await index.refresh() == 0  # nothing new: one empty probe
    finally:
        await mine.close()
        await theirs.close()


async def test_rows_from_before_the_feed_are_indexed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in enumerate(MIGRATIONS[:3], start=1):
        for statement in statements:
            db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    db.execute("INSERT INTO ddos (did, chain_id, nft_address, document, block, log_index) "
               "VALUES ('did:op:old', 1, '0xold', ?, 1, 0)", (doc(0),))
    db.commit()
    db.close()
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.ddo_changes_since(-1, 10) == [(0, "did:op:old", doc(0))]
        await store.put_ddo("did:op:new", 1, "0xnew", doc(1), 2, 0)
        index = SearchIndex(store)
        result = await index.search({"query": {"term": {"metadata.type": "dataset"}}})
        assert result.dids == ["did:op:old", "did:op:new"]
    finally:
        await store.close()
