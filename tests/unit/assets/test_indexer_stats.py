"""Aquarius v4's ``datatokens`` and ``stats`` on indexed DDOs (dev chain)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from web3 import Web3
from web3.logs import DISCARD

from tests.chain_fixtures import ChainHarness, order_asset
from tidegate.assets.indexer import ChainIndexer, IndexerOptions
from tidegate.chain.clients import ChainConfig
from tidegate.dev.ocean_txs import (
    ONE_TOKEN,
    ZERO_ADDRESS,
    contract,
    create_data_nft_with_datatoken,
    mint_datatoken,
    set_metadata,
    set_metadata_state,
)
from tidegate.dev.publishing import PublishedAsset, compact_json
from tidegate.stores.sqlite import SqliteStore

# --- pricing created after publishing (not in tidegate.dev.ocean_txs) -----------------


def create_fixed_rate(harness: ChainHarness, datatoken: str, rate: int) -> bytes:
    """``datatoken.createFixedRate`` on the FixedPrice exchange, OCEAN as base token."""
    me = harness.publisher.address
    dt = contract(harness.chain.w3, "ERC20Template", datatoken)
    receipt = harness.txs.send(harness.publisher, dt.functions.createFixedRate(
        harness.addresses["FixedPrice"], [harness.addresses["Ocean"], me, me, ZERO_ADDRESS],
        [18, 18, rate, 0, 1]), gas=1_000_000)
    [event] = dt.events.NewFixedRate().process_receipt(receipt, errors=DISCARD)
    return bytes(event["args"]["exchangeId"])


def set_rate(harness: ChainHarness, exchange_id: bytes, rate: int) -> None:
    fre = contract(harness.chain.w3, "FixedRateExchange", harness.addresses["FixedPrice"])
    harness.txs.send(harness.publisher, fre.functions.setRate(exchange_id, rate),
         gas=200_000)


def create_dispenser(harness: ChainHarness, datatoken: str) -> None:
    dt = contract(harness.chain.w3, "ERC20Template", datatoken)
    harness.txs.send(harness.publisher, dt.functions.createDispenser(
        harness.addresses["Dispenser"], 10 * ONE_TOKEN, 10 * ONE_TOKEN, True, ZERO_ADDRESS),
        gas=1_000_000)


def update_metadata(harness: ChainHarness, asset: PublishedAsset, name: str) -> str:
    new = {**asset.ddo, "metadata": {**asset.ddo["metadata"], "name": name}}
    plain = compact_json(new)
    return str(set_metadata(harness.txs, harness.publisher, asset.nft_address, 0,
                            "http://x", harness.publisher.address, bytes([0]), plain,
                            hashlib.sha256(plain).digest()))


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "index.db")
    await s.open()
    yield s
    await s.close()


@pytest.fixture
def indexer(chain_config: ChainConfig, store: SqliteStore) -> ChainIndexer:
    return ChainIndexer(chain_config, store, IndexerOptions())


async def stored(store: SqliteStore, did: str) -> dict[str, Any]:
    text = await store.get_ddo(did)
    assert text is not None, did
    return dict(orjson.loads(text))


# --- tests ------------------------------------------------------------------------------


async def test_datatokens_and_price_of_each_pricing_variant(
        harness: ChainHarness, store: SqliteStore, indexer: ChainIndexer) -> None:
    plain = harness.publish(name="plain", services=("access", "compute"))
    fixed = harness.publish(name="fixed", pricing="fixed_rate", rate=3 * ONE_TOKEN // 2)
    free = harness.publish(name="free", pricing="dispenser")
    assert await indexer.sync_once() == 3

    ddo = await stored(store, plain.did)
    assert ddo["datatokens"] == [
        {"address": plain.datatoken_address, "name": "Tidegate Datatoken", "symbol": "TDT",
         "serviceId": "0"},
        {"address": plain.datatoken_address, "name": "Tidegate Datatoken", "symbol": "TDT",
         "serviceId": "1"},
    ]
    assert ddo["stats"] == {"allocated": 0, "orders": 0, "price": {}}
    fixed_ddo = await stored(store, fixed.did)
    assert [d["address"] for d in fixed_ddo["datatokens"]] == [fixed.datatoken_address]
    assert fixed_ddo["stats"]["price"] == {
        "value": 1.5, "tokenAddress": Web3.to_checksum_address(harness.addresses["Ocean"]),
        "tokenSymbol": "OCEAN"}
    free_ddo = await stored(store, free.did)
    assert free_ddo["stats"] == {"allocated": 0, "orders": 0, "price": {"value": 0.0}}
    assert {"address", "name", "symbol", "state", "owner", "created", "tokenURI"} \
        == set(free_ddo["nft"])


async def test_orders_are_counted_and_survive_updates(
        harness: ChainHarness, store: SqliteStore, indexer: ChainIndexer) -> None:
    asset = harness.publish()
    await indexer.sync_once()
    created = (await stored(store, asset.did))["nft"]["created"]
    harness.give_datatokens(asset)
    order_asset(harness, asset)
    assert await indexer.sync_once() == 1
    assert (await stored(store, asset.did))["stats"]["orders"] == 1
    order_asset(harness, asset)
    order_asset(harness, asset)
    assert await indexer.sync_once() == 2
    assert (await stored(store, asset.did))["stats"]["orders"] == 3

    harness.chain.mine(harness.chain.latest_timestamp() + 60)  # a later block time
    tx = update_metadata(harness, asset, "renamed")
    set_metadata_state(harness.txs, harness.publisher, asset.nft_address, 4)
    await indexer.sync_once()
    ddo = await stored(store, asset.did)
    assert ddo["metadata"]["name"] == "renamed" and ddo["event"]["tx"] == tx
    assert ddo["stats"]["orders"] == 3
    assert ddo["nft"]["state"] == 4
    assert ddo["nft"]["created"] == created  # as Aquarius: the first publication's time
    assert ddo["event"]["datetime"] != created


async def test_a_fixed_rate_order_counts_and_keeps_the_price(
        harness: ChainHarness, store: SqliteStore, indexer: ChainIndexer) -> None:
    asset = harness.publish(pricing="fixed_rate", rate=2 * ONE_TOKEN)
    await indexer.sync_once()
    order_asset(harness, asset, variant="fixed_rate")
    await indexer.sync_once()
    stats = (await stored(store, asset.did))["stats"]
    assert stats["orders"] == 1 and stats["price"]["value"] == 2.0


async def test_a_retried_range_counts_an_order_once(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore,
        indexer: ChainIndexer) -> None:
    asset = harness.publish()
    await indexer.sync_once()
    before_order = await store.get_cursor(indexer.cursor_name)
    assert before_order is not None
    harness.give_datatokens(asset)
    order_asset(harness, asset)
    tx = update_metadata(harness, asset, "after the order")
    order_asset(harness, asset)
    await indexer.sync_once()
    assert (await stored(store, asset.did))["stats"]["orders"] == 2
    # As if the range had failed after its writes: it is processed once more.
    await store.set_cursor(indexer.cursor_name, before_order)
    await ChainIndexer(chain_config, store, IndexerOptions()).sync_once()
    ddo = await stored(store, asset.did)
    assert ddo["stats"]["orders"] == 2
    assert ddo["event"]["tx"] == tx and ddo["metadata"]["name"] == "after the order"


async def test_pricing_created_after_publishing_is_picked_up(
        harness: ChainHarness, store: SqliteStore, indexer: ChainIndexer) -> None:
    sold = harness.publish(name="sold later")
    given = harness.publish(name="given later")
    await indexer.sync_once()
    assert (await stored(store, sold.did))["stats"]["price"] == {}
    exchange = create_fixed_rate(harness, sold.datatoken_address, 5 * ONE_TOKEN)
    create_dispenser(harness, given.datatoken_address)
    assert await indexer.sync_once() == 2
    assert (await stored(store, sold.did))["stats"]["price"]["value"] == 5.0
    assert (await stored(store, given.did))["stats"]["price"] == {"value": 0.0}
    set_rate(harness, exchange, ONE_TOKEN // 4)
    assert await indexer.sync_once() == 1
    price = (await stored(store, sold.did))["stats"]["price"]
    assert price == {"value": 0.25, "tokenAddress": harness.addresses["Ocean"],
                     "tokenSymbol": "OCEAN"}


async def test_orders_of_datatokens_without_an_indexed_ddo_are_ignored(
        harness: ChainHarness, store: SqliteStore, indexer: ChainIndexer) -> None:
    indexed = harness.publish(name="indexed")
    await indexer.sync_once()
    txs = harness.txs
    nft, datatoken = create_data_nft_with_datatoken(txs, harness.addresses, harness.publisher)
    mint_datatoken(txs, harness.publisher, datatoken, harness.consumer.address, ONE_TOKEN)
    unlisted = PublishedAsset(did="", nft_address=nft, datatoken_address=datatoken,
                              metadata_tx="", ddo={"services": [{"id": "0"}]})
    order_asset(harness, unlisted)
    assert await indexer.sync_once() == 0
    assert (await stored(store, indexed.did))["stats"]["orders"] == 0
