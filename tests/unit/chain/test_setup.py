"""The per-chain rules: which key and which fee token each chain gets."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tests.helpers import OTHER_KEY, PROVIDER_KEY
from tidegate.chain.setup import ZERO_ADDRESS, ChainSetup, PerChain, chain_independent_key
from tidegate.errors import ConfigurationError

OCEAN = "0x2473f4F7bf40ed9310838edFCA6262C17A59DF64"
TOKEN = "0x" + "ab" * 20


def _setup(keys: PerChain[SecretStr], tokens: PerChain[str] | None = None) -> ChainSetup:
    return ChainSetup(rpc_urls=PerChain(single="http://rpc"), provider_keys=keys,
                      fee_tokens=tokens or PerChain())


def test_per_chain_values() -> None:
    assert PerChain(single="a").get(5) == "a" and not PerChain(single="a").is_map
    mapped = PerChain(by_chain={1: "a", 2: "b"})
    assert mapped.is_map and mapped.get(2) == "b" and mapped.get(3) is None
    assert PerChain[str]().get(1) is None


def test_provider_key_per_chain() -> None:
    single = _setup(PerChain(single=SecretStr(PROVIDER_KEY)))
    assert single.provider_key(8996) == single.provider_key(1) == PROVIDER_KEY
    mapped = _setup(PerChain(by_chain={8996: SecretStr(PROVIDER_KEY), 1: SecretStr(OTHER_KEY)}))
    assert (mapped.provider_key(8996), mapped.provider_key(1)) == (PROVIDER_KEY, OTHER_KEY)
    with pytest.raises(ConfigurationError, match="no key for chain 2"):
        mapped.provider_key(2)


def test_fee_token_per_chain() -> None:
    keys = PerChain(single=SecretStr(PROVIDER_KEY))
    ocean = {"Ocean": OCEAN}
    assert _setup(keys).fee_token(1, ocean) == OCEAN
    assert _setup(keys).fee_token(1, {}) == ZERO_ADDRESS
    assert _setup(keys, PerChain(single=TOKEN)).fee_token(1, ocean) == TOKEN
    mapped = _setup(keys, PerChain(by_chain={137: TOKEN}))
    assert (mapped.fee_token(137, ocean), mapped.fee_token(8996, ocean)) == (TOKEN, OCEAN)


def test_repr_shows_no_key_and_no_rpc_url() -> None:
    setup = ChainSetup(rpc_urls=PerChain(single="https://rpc/v3/apikey123"),
                       provider_keys=PerChain(single=SecretStr(PROVIDER_KEY)))
    assert "apikey123" not in repr(setup) and PROVIDER_KEY[2:] not in repr(setup)


def test_chain_independent_key_rule() -> None:
    mine, other = SecretStr(PROVIDER_KEY), SecretStr(OTHER_KEY)
    assert chain_independent_key(other, PerChain(single=mine)) is other
    assert chain_independent_key(None, PerChain(single=mine)) is mine
    # The lowest chain id, whatever the order of the JSON map.
    assert chain_independent_key(None, PerChain(by_chain={8996: mine, 137: other})) is other
    assert chain_independent_key(None, PerChain(by_chain={137: other, 8996: mine})) is other
    assert chain_independent_key(None, PerChain()) is None
