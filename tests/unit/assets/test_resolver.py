"""The built-in resolver: parsed assets are reused only while the stored DDO is unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tidegate.assets.ddo import did_for
from tidegate.assets.resolver import IndexedResolver
from tidegate.stores.sqlite import SqliteStore

NFT = "0x" + "ab" * 20
DID = did_for(NFT, 8996)


def ddo(name: str) -> str:
    raw: dict[str, Any] = {
        "id": DID, "chainId": 8996, "nftAddress": NFT, "version": "4.1.0",
        "metadata": {"name": name},
        "services": [{"id": "0", "type": "access", "datatokenAddress": "0x" + "cd" * 20,
                      "serviceEndpoint": "http://provider", "files": "0x00", "timeout": 0}],
    }
    return orjson.dumps(raw).decode()


async def test_an_update_by_another_store_connection_is_seen_at_once(tmp_path: Path) -> None:
    reader, indexer = SqliteStore(tmp_path / "s.db"), SqliteStore(tmp_path / "s.db")
    await reader.open()
    await indexer.open()  # another worker's indexer
    try:
        resolver = IndexedResolver(reader, cache_size=2)
        assert await resolver.resolve(DID) is None
        await indexer.put_ddo(DID, 8996, NFT, ddo("first"), 1, 0)
        first = await resolver.resolve(DID)
        assert first is not None and first.metadata["name"] == "first"
        assert await resolver.resolve(DID) is first  # unchanged text: the same parse
        await indexer.put_ddo(DID, 8996, NFT, ddo("second"), 2, 0)
        second = await resolver.resolve(DID)
        assert second is not None and second.metadata["name"] == "second"
        for i in range(3):  # other DIDs push it out of the 2-entry cache
            other = did_for("0x" + f"{i:02x}" * 20, 8996)
            await indexer.put_ddo(other, 8996, "0x" + f"{i:02x}" * 20, ddo("x"), 3, i)
            await resolver.resolve(other)
        again = await resolver.resolve(DID)
        assert again is not None and again is not second and again.metadata["name"] == "second"
    finally:
        await reader.close()
        await indexer.close()
