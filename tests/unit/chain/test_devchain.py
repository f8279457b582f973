"""The test chain (DevChain, or anvil) and its Ocean deployment."""

from __future__ import annotations

import pytest
from eth_tester.exceptions import TransactionFailed
from web3 import Web3

from tests.chain_fixtures import CONSUMER_OCEAN, ChainFacade
from tidegate.chain.contracts import load_artifact
from tidegate.chain.deploy import OceanAddresses
from tidegate.chain.ocean_txs import contract

BARGE_ACCOUNT_0 = "0xe2DD09d719Da89e5a3D0F2549c7E24566e947260"
# The barge addresses: the same on anvil and ganache for this mnemonic and order.
BARGE_OCEAN = "0x2473f4F7bf40ed9310838edFCA6262C17A59DF64"
BARGE_FACTORY = "0x9C2a015129969c98E9A5BcBEb61A5F907FF5b629"


def _all_addresses(addresses: OceanAddresses) -> list[str]:
    found: list[str] = []
    for key, value in addresses.items():
        if isinstance(value, dict):
            found.extend(value.values())
        elif isinstance(value, str):
            found.append(value)
        else:
            assert key in ("chainId", "startBlock")
    return found


def test_chain_identity_and_accounts(chain: ChainFacade) -> None:
    w3 = chain.w3
    assert w3.eth.chain_id == 8996
    assert w3.net.version == "8996"
    assert chain.accounts[0].address == BARGE_ACCOUNT_0
    assert len(chain.accounts) >= 10
    assert [a.address for a in chain.accounts] == list(w3.eth.accounts)
    assert all(w3.eth.get_balance(a.address) > 10**23 for a in chain.accounts)  # 1e6 ETH each
    assert Web3().eth.account.from_key(chain.private_key(5)).address == chain.accounts[5].address


def test_deploy_uses_barge_account_0_and_every_address_is_a_contract(
    chain: ChainFacade, addresses: OceanAddresses
) -> None:
    w3 = chain.w3
    assert addresses["chainId"] == 8996
    assert set(addresses) == {
        "Ocean",
        "OPFCommunityFeeCollector",
        "Router",
        "FixedPrice",
        "Dispenser",
        "ERC20Template",
        "ERC721Template",
        "ERC721Factory",
        "chainId",
        "startBlock",
    }
    assert set(addresses["ERC20Template"]) == {"1", "2"}
    for address in _all_addresses(addresses):
        assert len(w3.eth.get_code(Web3.to_checksum_address(address))) > 100, address
    (first_tx,) = w3.eth.get_block(addresses["startBlock"])["transactions"]
    assert isinstance(first_tx, bytes)
    assert w3.eth.get_transaction(first_tx)["from"] == BARGE_ACCOUNT_0
    ocean = contract(w3, "OceanToken", addresses["Ocean"])
    assert ocean.functions.owner().call() == BARGE_ACCOUNT_0
    assert addresses["Ocean"] == BARGE_OCEAN
    assert addresses["ERC721Factory"] == BARGE_FACTORY
    factory = contract(w3, "ERC721Factory", addresses["ERC721Factory"])
    assert factory.functions.getTokenTemplate(2).call()[0] == addresses["ERC20Template"]["2"]
    router = contract(w3, "FactoryRouter", addresses["Router"])
    assert router.functions.isFixedRateContract(addresses["FixedPrice"]).call()
    assert router.functions.isDispenserContract(addresses["Dispenser"]).call()


def test_deploy_twice_is_refused(chain: ChainFacade) -> None:
    with pytest.raises(RuntimeError, match="already deployed"):
        chain.deploy_ocean_contracts()


def test_snapshot_and_revert_restore_state(chain: ChainFacade, addresses: OceanAddresses) -> None:
    ocean = contract(chain.w3, "OceanToken", addresses["Ocean"])
    who = chain.accounts[7].address
    block = chain.w3.eth.block_number
    snapshot = chain.snapshot()
    chain.mint_ocean(who, 5 * 10**18)
    assert ocean.functions.balanceOf(who).call() == 5 * 10**18
    chain.revert(snapshot)
    assert ocean.functions.balanceOf(who).call() == 0
    assert chain.w3.eth.block_number == block
    assert chain.w3.eth.chain_id == 8996
    with pytest.raises(KeyError):
        chain.revert(10**9)


def test_session_fixture_funded_the_consumer(chain: ChainFacade, addresses: OceanAddresses) -> None:
    ocean = contract(chain.w3, "OceanToken", addresses["Ocean"])
    assert ocean.functions.balanceOf(chain.accounts[2].address).call() == CONSUMER_OCEAN


@pytest.mark.devchain_only
def test_quick_gas_estimate_is_enough_and_reverts_carry_the_reason(
    chain: ChainFacade, addresses: OceanAddresses
) -> None:
    w3 = chain.w3
    address = Web3.to_checksum_address(addresses["Ocean"])
    ocean = w3.eth.contract(address=address, abi=load_artifact("OceanToken").abi)
    owner, other = chain.accounts[0].address, chain.accounts[1].address
    estimate = ocean.functions.mint(other, 10).estimate_gas({"from": owner})
    assert 50_000 < estimate < 200_000
    tx_hash = ocean.functions.mint(other, 10).transact({"from": owner, "gas": estimate})
    assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
    with pytest.raises(TransactionFailed, match="Ownable: caller is not the owner"):
        ocean.functions.mint(other, 10).estimate_gas({"from": other})


def test_mine_at_a_timestamp(chain: ChainFacade) -> None:
    target = chain.latest_timestamp() + 3600
    chain.mine(target)
    assert chain.latest_timestamp() == target
    with pytest.raises(ValueError, match="after the latest"):
        chain.mine(target)
