"""Built-in metadata indexer: follows data NFT metadata events on every chain.

For each configured chain it scans ``MetadataCreated``, ``MetadataUpdated`` and
``MetadataState`` logs in block ranges up to ``head - confirmations`` (so re-orgs
shallower than the confirmation depth never reach the index), keeps only NFTs the
Ocean factory deployed, decodes each document it can (ECIES to this provider,
LZMA, sha256 check) and stores the DDO with Aquarius v4's extras (``nft``,
``event``, ``purgatory``, ``datatokens``, ``stats``). DDO versions only ddo-js
knows (4.7.0+, 5.x) also get Ocean Node's ``indexedMetadata`` (5.x only that, with
``credentialSubject.datatokens``): :mod:`tidegate.assets.versions`. In the same
ranges it follows the logs that change ``stats`` (orders and prices, see
``indexer_stats``).

The cursor advances only after a whole range is stored: an RPC failure mid-range
retries the same range, losing nothing, and a restart resumes after the last stored
range. An order already counted is not counted again when its range is retried (the
``orders:<chainId>`` cursor holds the position of the last one counted). One process
per store indexes (a lease), so several workers do not repeat the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from eth_typing import ABIEvent
from eth_utils import event_abi_to_log_topic, to_checksum_address
from hexbytes import HexBytes

from tidegate.assets.ddo import did_for, indexed_nft
from tidegate.assets.documents import DocumentError, decode_document
from tidegate.assets.indexer_stats import (
    StatsEvents,
    TokenReader,
    indexed_datatokens,
    log_position,
    merged_stats,
    node_stats_of,
)
from tidegate.assets.versions import Layout, layout
from tidegate.chain.clients import ChainConfig
from tidegate.chain.contracts import load_artifact
from tidegate.chain.nft import is_factory_nft, nft_contract
from tidegate.chain.rpc import concurrently, rpc
from tidegate.stores.base import Store

log = logging.getLogger(__name__)

_EVENTS = ("MetadataCreated", "MetadataUpdated", "MetadataState")


def _topics() -> dict[bytes, str]:
    entries = cast(list[dict[str, Any]], list(load_artifact("ERC721Template").abi))
    return {
        bytes(event_abi_to_log_topic(cast(ABIEvent, e))): str(e["name"])
        for e in entries
        if e.get("type") == "event" and e.get("name") in _EVENTS
    }


@dataclass(frozen=True)
class IndexerOptions:
    start_block: int = 0
    confirmations: int = 0
    chunk_blocks: int = 2000
    poll_interval: float = 1.0
    lease_ms: int = 15000
    node_fields_v4: bool = False
    """Also write ``indexedMetadata`` on classic 4.x DDOs (beside Aquarius' fields), so
    ocean.js 8's ``waitForIndexer(did, txid)`` works on the 4.1.0 DDOs it publishes;
    off by default: classic DDOs then stay exactly as Aquarius serves them."""


class ChainIndexer:
    """Indexes one chain into the store."""

    def __init__(self, chain: ChainConfig, store: Store, options: IndexerOptions) -> None:
        self.chain = chain
        self.store = store
        self.options = options
        self.cursor_name = f"metadata:{chain.chain_id}"
        self.holder = uuid.uuid4().hex
        self.orders_cursor = f"orders:{chain.chain_id}"
        self._topics = _topics()
        self._factory_nfts: dict[str, bool] = {}
        self.tokens = TokenReader(chain)
        self._stats = StatsEvents(chain, self.tokens)
        self._all_topics = [HexBytes(t) for t in [*self._topics, *self._stats.topics]]
        self._orders_mark: int | None = None

    async def sync_once(self) -> int:
        """Process every confirmed block not processed yet; return the events handled."""
        head = int(await rpc(self.chain.web3.eth.block_number, "eth_blockNumber"))
        target = head - self.options.confirmations
        last = await self.store.get_cursor(self.cursor_name)
        start = self.options.start_block if last is None else last + 1
        self._orders_mark = await self.store.get_cursor(self.orders_cursor)
        handled = 0
        while start <= target:
            end = min(target, start + self.options.chunk_blocks - 1)
            logs = await rpc(self.chain.web3.eth.get_logs({
                "fromBlock": start, "toBlock": end, "topics": [self._all_topics],
            }), "eth_getLogs")
            for entry in sorted(logs, key=lambda x: (x["blockNumber"], x["logIndex"])):
                handled += await self._handle(entry)
            await self.store.set_cursor(self.cursor_name, end)
            start = end + 1
        return handled

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; failures are logged and the range retried."""
        delay = self.options.poll_interval
        while not stop.is_set():
            try:
                if await self.store.try_lease(self.cursor_name, self.holder,
                                              self.options.lease_ms):
                    await self.sync_once()
                delay = self.options.poll_interval
            except Exception as exc:  # keep indexing whatever one round hit
                log.warning("indexer chain %s: %s", self.chain.chain_id, type(exc).__name__)
                delay = min(max(delay * 2, 0.5), 30.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    def _node_fields(self, kind: Layout) -> bool:
        """Whether DDOs of this layout get Ocean Node's ``indexedMetadata``."""
        return kind.indexed_metadata or self.options.node_fields_v4

    async def _is_factory_nft(self, nft: str) -> bool:
        if nft not in self._factory_nfts:
            self._factory_nfts[nft] = await is_factory_nft(self.chain, nft)
        return self._factory_nfts[nft]

    async def _handle(self, entry: Any) -> int:
        nft = to_checksum_address(entry["address"])
        name = self._topics.get(bytes(entry["topics"][0]))
        if name is None:
            return await self._stats_changed(entry)
        if not await self._is_factory_nft(nft):
            return 0
        contract = nft_contract(self.chain, nft)
        event = getattr(contract.events, name)().process_log(entry)
        if name == "MetadataState":
            return await self._state_changed(nft, event)
        return await self._document(nft, contract, event)

    async def _state_changed(self, nft: str, event: Any) -> int:
        found = await self.store.get_ddo_by_nft(self.chain.chain_id, nft)
        if found is None:
            return 0
        did, text = found
        ddo = orjson.loads(text)
        state = int(event["args"]["state"])
        kind = layout(ddo)
        if kind.aquarius_fields:
            ddo.setdefault("nft", {})["state"] = state
        if self._node_fields(kind) and (kind.indexed_metadata or "indexedMetadata" in ddo):
            ddo.setdefault("indexedMetadata", {}).setdefault("nft", {})["state"] = state
        await self.store.put_ddo(did, self.chain.chain_id, nft, orjson.dumps(ddo).decode(),
                                 int(event["blockNumber"]), int(event["logIndex"]))
        return 1

    async def _document(self, nft: str, contract: Any, event: Any) -> int:
        args = event["args"]
        flags = bytes(args["flags"])
        try:
            plaintext = decode_document(bytes(args["data"]), flags[0] if flags else 0,
                                        bytes(args["metaDataHash"]), self.chain.provider_key)
            ddo = orjson.loads(plaintext)
        except (DocumentError, orjson.JSONDecodeError):
            # Encrypted for another provider, or not a valid document: not ours to index.
            log.info("indexer chain %s: skipped an undecodable document", self.chain.chain_id)
            return 0
        kind = layout(ddo) if isinstance(ddo, dict) else Layout.CLASSIC
        did = did_for(nft, self.chain.chain_id, kind.did_prefix)
        if not isinstance(ddo, dict) or ddo.get("id") != did:
            log.info("indexer chain %s: skipped a document whose id is not its DID",
                     self.chain.chain_id)
            return 0
        previous_text = await self.store.get_ddo(did)
        previous = orjson.loads(previous_text) if previous_text else None
        extras = await self._extras(nft, contract, event, ddo, previous)
        node_fields = self._node_fields(kind)
        if node_fields:
            # The indexer's, never the publisher's (Ocean Node drops a published one too).
            ddo.pop("indexedMetadata", None)
            indexed = await self._indexed_metadata(extras, ddo, previous)
        if kind.aquarius_fields:
            ddo.update(extras)
        if node_fields:
            ddo["indexedMetadata"] = indexed
        if kind is Layout.V5 and isinstance(ddo.get("credentialSubject"), dict):
            ddo["credentialSubject"]["datatokens"] = extras["datatokens"]
        await self.store.put_ddo(did, self.chain.chain_id, nft, orjson.dumps(ddo).decode(),
                                 int(event["blockNumber"]), int(event["logIndex"]))
        return 1

    async def _extras(self, nft: str, contract: Any, event: Any, ddo: dict[str, Any],
                      previous: dict[str, Any] | None) -> dict[str, Any]:
        """Aquarius' fields; ``nft.created`` and ``stats.orders`` carry over an update."""
        args = event["args"]
        calls = contract.functions

        async def tokens() -> tuple[list[dict[str, Any]], dict[str, Any]]:
            datatokens = await self.tokens.datatokens(ddo)
            return datatokens, await self.tokens.price(nft, datatokens)

        name, symbol, owner, token_uri, (datatokens, price) = await concurrently(
            rpc(calls.name().call(), "name"), rpc(calls.symbol().call(), "symbol"),
            rpc(calls.ownerOf(1).call(), "ownerOf"), rpc(calls.tokenURI(1).call(), "tokenURI"),
            tokens(),
        )
        when = datetime.fromtimestamp(int(args["timestamp"]), UTC).strftime("%Y-%m-%dT%H:%M:%S")
        old_nft = previous.get("nft") if previous and layout(previous).aquarius_fields \
            else None
        created = old_nft.get("created") if isinstance(old_nft, dict) else None
        return {
            "nft": {
                "address": nft, "name": name, "symbol": symbol,
                "owner": to_checksum_address(owner), "state": int(args["state"]),
                "tokenURI": token_uri, "created": created if isinstance(created, str) else when,
            },
            "event": {
                "tx": HexBytes(event["transactionHash"]).to_0x_hex(),
                "block": int(event["blockNumber"]),
                "from": to_checksum_address(args.get("createdBy") or args.get("updatedBy")),
                "contract": nft,
                "datetime": when,
            },
            "purgatory": {"state": False},
            "datatokens": datatokens,
            "stats": merged_stats(previous, price),
        }

    async def _indexed_metadata(self, extras: dict[str, Any], ddo: dict[str, Any],
                                previous: dict[str, Any] | None) -> dict[str, Any]:
        """Ocean Node's ``indexedMetadata`` from the facts read for Aquarius' fields:
        ``event.txid`` (ocean.js 8's ``waitForIndexer`` compares it), times as Ocean
        Node writes them (``created`` ``…Z``, ``datetime`` JavaScript's ``toJSON``),
        ``stats`` in its list shape; ``nft.created`` and the order counts carry over."""
        event, nft = extras["event"], dict(extras["nft"])
        old = indexed_nft(previous) if previous and layout(previous).indexed_metadata else {}
        if not old and previous and isinstance(previous.get("indexedMetadata"), dict):
            found = previous["indexedMetadata"].get("nft")  # written under node_fields_v4
            old = found if isinstance(found, dict) else {}
        when = datetime.strptime(event["datetime"], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        nft["created"] = old["created"] if isinstance(old.get("created"), str) \
            else when.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "nft": nft,
            "event": {"txid": event["tx"], "block": event["block"], "from": event["from"],
                      "contract": event["contract"],
                      "datetime": when.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
            "purgatory": {"state": False},
            "stats": await self.tokens.node_stats(ddo, previous),
        }

    async def _stats_changed(self, entry: Any) -> int:
        """An order or a pricing change of a datatoken of an indexed DDO."""
        found = await self._stats.classify(entry)
        if found is None:
            return 0
        nft = await self.tokens.nft_of(found.datatoken)
        stored = await self.store.get_ddo_by_nft(self.chain.chain_id, nft) if nft else None
        if nft is None or stored is None:
            return 0
        did, text = stored
        ddo = orjson.loads(text)
        datatokens = indexed_datatokens(ddo)
        if found.datatoken.lower() not in {str(d.get("address", "")).lower()
                                           for d in datatokens}:
            return 0  # a datatoken of this NFT that no service of the DDO uses
        block, index = int(entry["blockNumber"]), int(entry["logIndex"])
        position = log_position(block, index)
        if found.order and self._orders_mark is not None and position <= self._orders_mark:
            return 0  # counted before this range was retried
        changed = False
        if layout(ddo).aquarius_fields:
            stats = merged_stats(ddo, await self.tokens.price(nft, datatokens))
            if found.order:
                stats["orders"] += 1
            changed = found.order or stats != ddo.get("stats")
            ddo["stats"] = stats
        kind = layout(ddo)
        if self._node_fields(kind) and (kind.indexed_metadata or "indexedMetadata" in ddo):
            changed = await self._node_stats_changed(ddo, found.datatoken, found.order) \
                or changed
        if not changed:
            return 0
        await self.store.put_ddo(did, self.chain.chain_id, nft, orjson.dumps(ddo).decode(),
                                 block, index)
        if found.order:
            await self.store.set_cursor(self.orders_cursor, position)
            self._orders_mark = position
        return 1

    async def _node_stats_changed(self, ddo: dict[str, Any], datatoken: str,
                                  order: bool) -> bool:
        """Refresh ``indexedMetadata.stats`` after a stats log of ``datatoken``: its
        entries' prices, and one more order on each when the log is an order."""
        indexed = ddo.setdefault("indexedMetadata", {})
        stats = node_stats_of(ddo)
        before = orjson.dumps(stats)
        prices = await self.tokens.node_prices(datatoken)
        for entry in stats:
            if str(entry.get("datatokenAddress", "")).lower() == datatoken.lower():
                entry["prices"] = prices
                if order:
                    entry["orders"] = int(entry.get("orders") or 0) + 1
        indexed["stats"] = stats
        return orjson.dumps(stats) != before


async def run_indexers(indexers: list[ChainIndexer], stop: asyncio.Event) -> None:
    """Run every chain's indexer until ``stop``."""
    await asyncio.gather(*(i.run(stop) for i in indexers))

