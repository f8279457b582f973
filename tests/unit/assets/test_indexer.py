"""The built-in indexer on the dev chain: variants, states, restarts, flaky RPCs."""

import hashlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.chain_fixtures import ChainHarness, order_asset
from tidegate.assets.indexer import ChainIndexer, IndexerOptions
from tidegate.chain.clients import ChainConfig, build_web3, rpc_session
from tidegate.dev.ocean_txs import set_metadata, set_metadata_state
from tidegate.dev.publishing import compact_json
from tidegate.stores.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "index.db")
    await s.open()
    yield s
    await s.close()


async def stored(store: SqliteStore, did: str) -> dict[str, Any]:
    text = await store.get_ddo(did)
    assert text is not None, did
    return dict(orjson.loads(text))


async def test_indexes_every_pricing_variant(harness: ChainHarness, chain_config: ChainConfig,
                                             store: SqliteStore,
                                             caplog: pytest.LogCaptureFixture) -> None:
    assets = [harness.publish(name=f"v-{p}", pricing=p)
              for p in ("plain", "fixed_rate", "dispenser")]
    with caplog.at_level(logging.DEBUG):
        handled = await ChainIndexer(chain_config, store, IndexerOptions()).sync_once()
    assert handled == 3
    for asset in assets:
        ddo = await stored(store, asset.did)
        assert ddo["metadata"] == asset.ddo["metadata"]
        assert ddo["nft"]["address"] == asset.nft_address
        assert ddo["nft"]["owner"] == harness.publisher.address
        assert ddo["nft"]["state"] == 0
        assert ddo["event"]["tx"] == asset.metadata_tx
        assert ddo["purgatory"] == {"state": False}
        assert ddo["datatokens"] == [{"address": asset.datatoken_address,
                                      "name": "Tidegate Datatoken", "symbol": "TDT",
                                      "serviceId": "0"}]
        assert ddo["stats"]["orders"] == 0
        assert asset.ddo["metadata"]["name"] not in caplog.text


async def test_state_changes_and_updates_are_reflected(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore) -> None:
    asset = harness.publish()
    indexer = ChainIndexer(chain_config, store, IndexerOptions())
    await indexer.sync_once()
    set_metadata_state(harness.txs, harness.publisher, asset.nft_address, 3)
    assert await indexer.sync_once() == 1
    assert (await stored(store, asset.did))["nft"]["state"] == 3
    set_metadata_state(harness.txs, harness.publisher, asset.nft_address, 2)
    await indexer.sync_once()
    assert (await stored(store, asset.did))["nft"]["state"] == 2
    new = {**asset.ddo, "metadata": {**asset.ddo["metadata"], "name": "renamed"}}
    plain = compact_json(new)
    tx = set_metadata(harness.txs, harness.publisher, asset.nft_address, 0, "http://x",
                      harness.publisher.address, bytes([0]), plain, hashlib.sha256(plain).digest())
    await indexer.sync_once()
    ddo = await stored(store, asset.did)
    assert ddo["metadata"]["name"] == "renamed"
    assert ddo["event"]["tx"] == tx
    assert ddo["nft"]["state"] == 0


async def test_restart_resumes_without_reprocessing(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore) -> None:
    harness.publish(name="one")
    assert await ChainIndexer(chain_config, store, IndexerOptions()).sync_once() == 1
    restarted = ChainIndexer(chain_config, store, IndexerOptions())
    assert await restarted.sync_once() == 0  # nothing processed twice
    second = harness.publish(name="two")
    assert await ChainIndexer(chain_config, store, IndexerOptions()).sync_once() == 1
    assert await store.get_ddo(second.did) is not None


async def test_documents_it_cannot_verify_are_skipped(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore) -> None:
    asset = harness.publish()
    wrong_id = compact_json({**asset.ddo, "id": "did:op:" + "0" * 64})
    set_metadata(harness.txs, harness.publisher, asset.nft_address, 0, "http://x",
                 harness.publisher.address, bytes([0]), wrong_id,
                 hashlib.sha256(wrong_id).digest())
    bad_hash = compact_json(asset.ddo)
    set_metadata(harness.txs, harness.publisher, asset.nft_address, 0, "http://x",
                 harness.publisher.address, bytes([0]), bad_hash, b"\0" * 32)
    await ChainIndexer(chain_config, store, IndexerOptions()).sync_once()
    # The first (valid) version stays; the forged id and the bad hash were not stored.
    assert (await stored(store, asset.did))["event"]["tx"] == asset.metadata_tx


async def test_a_datatoken_that_is_no_contract_is_listed_without_name(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore) -> None:
    """As Aquarius: a service's datatoken that answers nothing gets empty name and symbol
    (and the range is not retried for ever)."""
    asset = harness.publish()
    bogus = "0x000000000000000000000000000000000000dEaD"
    services = [{**asset.ddo["services"][0], "datatokenAddress": bogus}]
    plain = compact_json({**asset.ddo, "services": services})
    set_metadata(harness.txs, harness.publisher, asset.nft_address, 0, "http://x",
                 harness.publisher.address, bytes([0]), plain, hashlib.sha256(plain).digest())
    assert await ChainIndexer(chain_config, store, IndexerOptions()).sync_once() == 2
    ddo = await stored(store, asset.did)
    assert ddo["datatokens"] == [{"address": bogus, "name": "", "symbol": "",
                                  "serviceId": "0"}]
    assert ddo["stats"]["price"] == {}


async def test_orders_count_for_a_ddo_indexed_before_datatokens_existed(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore) -> None:
    """A DDO stored by an older Tidegate (no ``datatokens``/``stats``) still counts orders."""
    asset = harness.publish()
    indexer = ChainIndexer(chain_config, store, IndexerOptions())
    await indexer.sync_once()
    old = await stored(store, asset.did)
    del old["datatokens"], old["stats"]
    block = old["event"]["block"]
    await store.put_ddo(asset.did, 8996, asset.nft_address, orjson.dumps(old).decode(), block,
                        10**6)
    harness.give_datatokens(asset)
    order_asset(harness, asset)
    assert await indexer.sync_once() == 1
    assert (await stored(store, asset.did))["stats"]["orders"] == 1


class FlakyRpc:
    """An external RPC that fails some eth_getLogs calls (what a real node does under load)."""

    def __init__(self, upstream: str, fail_calls: set[int]) -> None:
        self.upstream, self.fail_calls, self.get_logs_calls = upstream, fail_calls, 0
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if json.loads(body).get("method") == "eth_getLogs":
                    flaky.get_logs_calls += 1
                    if flaky.get_logs_calls in flaky.fail_calls:
                        self.send_response(502)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                answer = httpx.post(flaky.upstream, content=body,
                                    headers={"Content-Type": "application/json"}).content
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky_rpc(harness: ChainHarness) -> Iterator[FlakyRpc]:
    rpc = FlakyRpc(harness.rpc.url, fail_calls={2, 3})
    yield rpc
    rpc.close()


async def test_an_rpc_failing_twice_mid_scan_loses_nothing(
        harness: ChainHarness, chain_config: ChainConfig, store: SqliteStore,
        flaky_rpc: FlakyRpc) -> None:
    assets = [harness.publish(name=f"a{i}") for i in range(3)]
    session = rpc_session()
    flaky = ChainConfig(chain_config.chain_id, flaky_rpc.url, chain_config.provider_key,
                        chain_config.provider_address,
                        build_web3(flaky_rpc.url, 10, session), chain_config.addresses,
                        fee_token=chain_config.fee_token)
    indexer = ChainIndexer(flaky, store, IndexerOptions(chunk_blocks=10))
    failures = 0
    try:
        for _ in range(5):
            try:
                await indexer.sync_once()
                break
            except Exception:
                failures += 1
    finally:
        await session.close()
    assert failures == 2
    for asset in assets:
        assert (await stored(store, asset.did))["event"]["tx"] == asset.metadata_tx
