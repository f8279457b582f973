"""The built-in indexer with each DDO version ddo-js 0.2.0 publishes (dev chain).

Documents are put on chain as ocean.js 8 does it (CodeExamples.md): ``JSON.stringify``
of the DDO, ECIES-encrypted to the provider (flags 2), hashed with sha256. A classic
4.x DDO gets exactly Aquarius' fields (nothing of Ocean Node's); 4.7.0 gets both;
5.0.0 gets Ocean Node's ``indexedMetadata`` and ``credentialSubject.datatokens``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from web3 import Web3

from tests.chain_fixtures import ChainHarness, order_asset
from tidegate.assets.ddo import did_for
from tidegate.assets.indexer import ChainIndexer, IndexerOptions
from tidegate.assets.versions import js_stringify
from tidegate.chain.clients import ChainConfig
from tidegate.dev.ocean_txs import (
    Variant,
    create_data_nft_with_datatoken,
    set_metadata,
    set_metadata_state,
)
from tidegate.dev.publishing import PublishedAsset
from tidegate.stores.sqlite import SqliteStore

AQUARIUS_FIELDS = {"nft", "event", "purgatory", "datatokens", "stats"}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "index.db")
    await s.open()
    yield s
    await s.close()


def document(version: str, nft: str, datatoken: str) -> dict[str, Any]:
    metadata = {"created": "2026-12-01T10:00:00Z", "updated": "2026-12-01T10:00:00Z",
                "type": "dataset", "name": f"tides {version}", "description": "hourly",
                "author": "harbour", "license": "CC0-1.0", "providedBy": "harbour"}
    service = {"id": "svc-0", "type": "access", "files": "0xabcd",
               "datatokenAddress": datatoken, "serviceEndpoint": "http://tidegate",
               "timeout": 3600}
    if version.startswith("5"):
        did = did_for(nft, 8996, "did:ope:")
        return {"@context": ["https://www.w3.org/ns/credentials/v2"], "id": did,
                "version": version, "type": ["VerifiableCredential"],
                "issuer": "did:op:issuer",
                "credentialSubject": {"id": did, "chainId": 8996, "nftAddress": nft,
                                      "metadata": metadata, "services": [service],
                                      "credentials": {"allow": [], "deny": []}}}
    return {"@context": ["https://w3id.org/did/v1"], "id": did_for(nft, 8996),
            "version": version, "chainId": 8996, "nftAddress": nft, "metadata": metadata,
            "services": [service]}


def publish(harness: ChainHarness, version: str, variant: Variant = "plain",
            extra: dict[str, Any] | None = None) -> tuple[PublishedAsset, str]:
    """(asset, the plaintext's sha256 hex) published the ocean.js 8 way."""
    nft, datatoken = create_data_nft_with_datatoken(harness.txs, harness.addresses,
                                                    harness.publisher, variant)
    ddo = {**document(version, nft, datatoken), **(extra or {})}
    plain = js_stringify(ddo).encode()
    encrypted = bytes.fromhex(harness.encrypt(plain)[2:])
    tx = set_metadata(harness.txs, harness.publisher, nft, 0, "http://tidegate",
                      harness.publisher.address, bytes([2]), encrypted,
                      hashlib.sha256(plain).digest())
    return PublishedAsset(did=ddo["id"], nft_address=nft, datatoken_address=datatoken,
                          metadata_tx=str(tx), ddo=ddo), hashlib.sha256(plain).hexdigest()


async def stored(store: SqliteStore, did: str) -> dict[str, Any]:
    text = await store.get_ddo(did)
    assert text is not None, did
    return dict(orjson.loads(text))


async def test_classic_versions_get_aquarius_fields_only(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore) -> None:
    """What ocean.py and ocean.js 3.x read stays what it was: the published document and
    Aquarius' five keys, nothing else (no ``indexedMetadata``)."""
    published = [publish(harness, v)[0] for v in ("4.1.0", "4.3.0", "4.5.0")]
    await ChainIndexer(chain_config, store, IndexerOptions()).sync_once()
    for asset in published:
        ddo = await stored(store, asset.did)
        assert list(ddo)[:len(asset.ddo)] == list(asset.ddo)
        assert set(ddo) - set(asset.ddo) == AQUARIUS_FIELDS
        assert {k: ddo[k] for k in asset.ddo} == asset.ddo
        assert ddo["event"]["tx"] == asset.metadata_tx and "txid" not in ddo["event"]


async def test_a_47_ddo_gets_both_generations_fields(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore) -> None:
    asset, _ = publish(harness, "4.7.0", extra={"indexedMetadata": {"nft": {"state": 3}}})
    await ChainIndexer(chain_config, store, IndexerOptions()).sync_once()
    ddo = await stored(store, asset.did)
    assert set(ddo) >= AQUARIUS_FIELDS
    indexed = ddo["indexedMetadata"]
    assert list(indexed) == ["nft", "event", "purgatory", "stats"]
    # The publisher's indexedMetadata was replaced by the indexer's.
    assert indexed["nft"]["state"] == 0
    assert indexed["event"]["txid"] == ddo["event"]["tx"] == asset.metadata_tx
    assert indexed["event"]["contract"] == asset.nft_address
    assert indexed["event"]["from"] == harness.publisher.address
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", indexed["event"]["datetime"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", indexed["nft"]["created"])
    assert indexed["stats"] == [{"datatokenAddress": asset.datatoken_address,
                                 "name": "Tidegate Datatoken", "symbol": "TDT",
                                 "serviceId": "svc-0", "orders": 0, "prices": []}]


async def test_a_v5_ddo_is_stored_as_ocean_node_stores_it(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore) -> None:
    asset, _ = publish(harness, "5.0.0", variant="dispenser")
    indexer = ChainIndexer(chain_config, store, IndexerOptions())
    assert await indexer.sync_once() == 1
    ddo = await stored(store, asset.did)
    assert ddo["id"].startswith("did:ope:")
    assert not AQUARIUS_FIELDS & set(ddo)  # nothing at the top but indexedMetadata
    assert ddo["credentialSubject"]["datatokens"] == [
        {"address": asset.datatoken_address, "name": "Tidegate Datatoken", "symbol": "TDT",
         "serviceId": "svc-0"}]
    indexed = ddo["indexedMetadata"]
    assert indexed["nft"]["address"] == asset.nft_address
    assert indexed["nft"]["owner"] == harness.publisher.address
    assert indexed["event"]["txid"] == asset.metadata_tx
    [stat] = indexed["stats"]
    assert stat["orders"] == 0
    assert stat["prices"] == [{"type": "dispenser", "price": "0",
                               "contract": Web3.to_checksum_address(
                                   harness.addresses["Dispenser"]),
                               "token": asset.datatoken_address}]

    # order_asset reads the service id from a v4-shaped ddo: give it the v5 service.
    order_asset(harness, PublishedAsset(
        did=asset.did, nft_address=asset.nft_address, datatoken_address=asset.datatoken_address,
        metadata_tx="", ddo={"services": asset.ddo["credentialSubject"]["services"]}),
        variant="dispenser")
    assert await indexer.sync_once() == 1
    assert (await stored(store, asset.did))["indexedMetadata"]["stats"][0]["orders"] == 1
    set_metadata_state(harness.txs, harness.publisher, asset.nft_address, 4)
    await indexer.sync_once()
    ddo = await stored(store, asset.did)
    assert ddo["indexedMetadata"]["nft"]["state"] == 4 and "nft" not in ddo
    created = ddo["indexedMetadata"]["nft"]["created"]

    # An update keeps the order count and the first publication time.
    renamed = {**asset.ddo, "credentialSubject": {
        **asset.ddo["credentialSubject"],
        "metadata": {**asset.ddo["credentialSubject"]["metadata"], "name": "renamed"}}}
    plain = js_stringify(renamed).encode()
    harness.chain.mine(harness.chain.latest_timestamp() + 60)
    tx = set_metadata(harness.txs, harness.publisher, asset.nft_address, 0, "http://tidegate",
                      harness.publisher.address, bytes([2]),
                      bytes.fromhex(harness.encrypt(plain)[2:]), hashlib.sha256(plain).digest())
    await indexer.sync_once()
    ddo = await stored(store, asset.did)
    assert ddo["credentialSubject"]["metadata"]["name"] == "renamed"
    assert ddo["indexedMetadata"]["event"]["txid"] == tx
    assert ddo["indexedMetadata"]["stats"][0]["orders"] == 1
    assert ddo["indexedMetadata"]["nft"]["created"] == created


async def test_a_fixed_rate_price_in_ocean_node_form(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore) -> None:
    asset, _ = publish(harness, "5.0.0", variant="fixed_rate")
    await ChainIndexer(chain_config, store, IndexerOptions()).sync_once()
    [price] = (await stored(store, asset.did))["indexedMetadata"]["stats"][0]["prices"]
    assert price["type"] == "fixedrate"
    assert price["token"] == Web3.to_checksum_address(harness.addresses["Ocean"])
    assert price["contract"] == Web3.to_checksum_address(harness.addresses["FixedPrice"])
    assert re.fullmatch(r"0x[0-9a-f]{64}", price["exchangeId"])
    assert re.fullmatch(r"\d+\.\d+", price["price"])


async def test_a_v5_document_with_a_did_op_id_is_not_indexed(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore) -> None:
    asset, _ = publish(harness, "5.0.0")
    nft = asset.nft_address
    forged = {**asset.ddo, "id": did_for(nft, 8996)}
    plain = js_stringify(forged).encode()
    set_metadata(harness.txs, harness.publisher, nft, 0, "http://tidegate",
                 harness.publisher.address, bytes([0]), plain, hashlib.sha256(plain).digest())
    await ChainIndexer(chain_config, store, IndexerOptions()).sync_once()
    assert await store.get_ddo(did_for(nft, 8996)) is None
    assert (await stored(store, asset.did))["indexedMetadata"]["event"]["txid"] \
        == asset.metadata_tx


async def test_classic_ddos_get_node_fields_when_the_operator_asks(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore) -> None:
    """``TIDEGATE_INDEXER_NODE_FIELDS_V4``: a 4.1.0 DDO keeps Aquarius' fields and gains
    ``indexedMetadata`` (so ocean.js 8's ``waitForIndexer(did, txid)`` matches), kept up
    to date by orders and state changes."""
    asset, _ = publish(harness, "4.1.0", variant="dispenser")
    indexer = ChainIndexer(chain_config, store, IndexerOptions(node_fields_v4=True))
    await indexer.sync_once()
    ddo = await stored(store, asset.did)
    assert set(ddo) >= AQUARIUS_FIELDS
    assert ddo["indexedMetadata"]["event"]["txid"] == ddo["event"]["tx"] == asset.metadata_tx
    assert ddo["indexedMetadata"]["stats"][0]["prices"][0]["type"] == "dispenser"
    created = ddo["indexedMetadata"]["nft"]["created"]
    order_asset(harness, PublishedAsset(
        did=asset.did, nft_address=asset.nft_address, datatoken_address=asset.datatoken_address,
        metadata_tx="", ddo=asset.ddo), variant="dispenser")
    set_metadata_state(harness.txs, harness.publisher, asset.nft_address, 5)
    await indexer.sync_once()
    ddo = await stored(store, asset.did)
    assert ddo["stats"]["orders"] == ddo["indexedMetadata"]["stats"][0]["orders"] == 1
    assert ddo["nft"]["state"] == ddo["indexedMetadata"]["nft"]["state"] == 5
    assert ddo["indexedMetadata"]["nft"]["created"] == created
