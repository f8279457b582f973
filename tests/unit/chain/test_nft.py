"""Data NFT reads against real contracts on the session chain."""

import asyncio
import dataclasses
from typing import Any

import pytest

from tests.chain_fixtures import ChainHarness
from tidegate.chain.nft import is_factory_nft, metadata_state, nft_contract
from tidegate.chain.rpc import ContractCallError
from tidegate.dev.ocean_txs import set_metadata_state

pytestmark = pytest.mark.chain


async def test_metadata_state_follows_the_chain_and_agrees_with_web3(
        harness: ChainHarness, chain_config: Any) -> None:
    asset = harness.publish()
    for state in (0, 3, 2, 5, 0):
        if state:
            set_metadata_state(harness.txs, harness.publisher, asset.nft_address, state)
        # The raw eth_call and web3's full contract call must read the same value.
        nft = nft_contract(chain_config, asset.nft_address)
        via_web3 = await nft.functions.getMetaData().call()
        assert await metadata_state(chain_config, asset.nft_address) == via_web3[2]
        if state:
            assert via_web3[2] == state


async def test_metadata_state_of_a_non_nft_is_a_contract_call_error(
        harness: ChainHarness, chain_config: Any) -> None:
    no_code = "0x" + "12" * 20
    not_an_nft = chain_config.contract_address("ERC721Factory")
    for address in (no_code, not_an_nft):
        with pytest.raises(ContractCallError) as info:
            await metadata_state(chain_config, address)
        assert info.value.status == 400
    assert not await is_factory_nft(chain_config, no_code)


async def test_a_state_read_is_reused_for_the_ttl_only(
        harness: ChainHarness, chain_config: Any) -> None:
    cached = dataclasses.replace(chain_config, state_ttl=0.5, state_cache={})
    asset = harness.publish()
    assert await metadata_state(cached, asset.nft_address) == 0
    set_metadata_state(harness.txs, harness.publisher, asset.nft_address, 3)
    assert await metadata_state(cached, asset.nft_address) == 0  # within the TTL
    assert await metadata_state(chain_config, asset.nft_address) == 3  # TTL 0: no reuse
    await asyncio.sleep(0.6)
    assert await metadata_state(cached, asset.nft_address) == 3


async def test_concurrent_misses_share_one_state_read(
        harness: ChainHarness, chain_config: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Under load the entry expires for every request in flight at once; each used to
    # send its own eth_call. The real provider is called, only counted.
    cached = dataclasses.replace(chain_config, state_ttl=30.0, state_cache={}, state_reads={})
    asset = harness.publish()
    provider = cached.web3.provider
    real = provider.make_request
    calls: list[str] = []

    async def counted(method: Any, params: Any) -> Any:
        calls.append(str(method))
        return await real(method, params)

    monkeypatch.setattr(provider, "make_request", counted)
    states = await asyncio.gather(*(metadata_state(cached, asset.nft_address)
                                    for _ in range(50)))
    assert states == [0] * 50
    assert calls == ["eth_call"]
    assert cached.state_reads == {}  # nothing left in flight

    # A waiter cancelled (its client left) does not cancel the read the others share.
    cached.state_cache.clear()
    first = asyncio.ensure_future(metadata_state(cached, asset.nft_address))
    second = asyncio.ensure_future(metadata_state(cached, asset.nft_address))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 0
    assert calls == ["eth_call", "eth_call"]
