"""The test chain (DevChain, or anvil) and its Ocean deployment."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_tester.exceptions import TransactionFailed
from web3 import Web3

from tests.chain_fixtures import CONSUMER_OCEAN, ChainFacade, ChainHarness
from tidegate.chain.contracts import load_artifact
from tidegate.dev.deploy import OceanAddresses
from tidegate.dev.ocean_txs import contract

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
    # The full key set and the template maps: tests/unit/dev/test_deploy.py.
    assert set(addresses) == set(OceanAddresses.__required_keys__)
    assert set(addresses["ERC20Template"]) == {"1", "2", "3"}
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


# -- a real dev node's surface, over JSON-RPC (the shim, or anvil) -------------------------

MAIL_TYPED_DATA: dict[str, Any] = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [
            {"name": "from", "type": "Person"},
            {"name": "to", "type": "Person"},
            {"name": "contents", "type": "string"},
        ],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "Ether Mail",
        "version": "1",
        "chainId": 8996,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
    },
}


@pytest.fixture
def node(harness: ChainHarness) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=harness.rpc.url, timeout=30) as client:
        yield client


def rpc(client: httpx.Client, method: str, *params: Any) -> Any:
    answer = client.post("/", json={"jsonrpc": "2.0", "id": 1, "method": method,
                                    "params": list(params)}).json()
    assert "error" not in answer, answer
    return answer["result"]


def test_eth_accounts_lists_the_barge_accounts(node: httpx.Client, chain: ChainFacade) -> None:
    listed = [Web3.to_checksum_address(a) for a in rpc(node, "eth_accounts")]
    assert listed[:10] == [a.address for a in chain.accounts[:10]]
    assert listed[0] == BARGE_ACCOUNT_0


def test_eth_sign_and_personal_sign_recover_to_the_account(
    node: httpx.Client, chain: ChainFacade
) -> None:
    consumer = chain.accounts[2].address
    message = b"Tidegate nonce 17"
    hex_message = "0x" + message.hex()
    # ethers' JsonRpcSigner.signMessage (ocean.js) sends personal_sign(data, address).
    personal = rpc(node, "personal_sign", hex_message, consumer)
    eth_sign = rpc(node, "eth_sign", consumer, hex_message)
    for signature in (personal, eth_sign):
        recovered = Account.recover_message(encode_defunct(primitive=message),
                                            signature=signature)
        assert recovered == consumer
        assert int(signature[-2:], 16) in (27, 28)


def test_sign_typed_data_v4_recovers_to_the_account(
    node: httpx.Client, chain: ChainFacade
) -> None:
    signer = chain.accounts[1].address
    signature = rpc(node, "eth_signTypedData_v4", signer, json.dumps(MAIL_TYPED_DATA))
    recovered = Account.recover_message(encode_typed_data(full_message=MAIL_TYPED_DATA),
                                        signature=signature)
    assert recovered == signer


def test_evm_snapshot_revert_mine_and_increase_time(
    node: httpx.Client, chain: ChainFacade
) -> None:
    start = int(rpc(node, "eth_blockNumber"), 16)
    snapshot = rpc(node, "evm_snapshot")
    rpc(node, "evm_mine")
    assert int(rpc(node, "eth_blockNumber"), 16) == start + 1
    before = chain.latest_timestamp()
    # The answer is the node's total offset, a JSON number. In a long session it is not
    # 3600 exactly: anvil's revert sets its clock back to the snapshot's block time, and
    # the in-process chain may have run ahead of the clock in a burst of blocks.
    assert isinstance(rpc(node, "evm_increaseTime", 3600), int)
    rpc(node, "evm_mine")
    assert chain.latest_timestamp() - before >= 3600 - 120
    assert rpc(node, "evm_revert", snapshot) is True
    assert int(rpc(node, "eth_blockNumber"), 16) == start
    # reverting also takes the clock offset back (as anvil does)
    rpc(node, "evm_mine")
    assert chain.latest_timestamp() - before < 3000


@pytest.mark.devchain_only  # anvil's clock lags after the per-test reverts (see above)
def test_an_idle_chain_stamps_its_next_block_with_the_wall_clock(chain: ChainFacade) -> None:
    time.sleep(1.1)  # the block after an idle spell must not carry a stale time
    ahead = chain.latest_timestamp() - time.time()
    chain.mine()
    stamped = chain.latest_timestamp()
    assert stamped - time.time() <= max(ahead, 0) + 2
    assert stamped >= int(time.time()) - 2


@pytest.mark.devchain_only
def test_in_process_block_times_follow_the_clock_over_500_blocks() -> None:
    """``max(clock + offset, parent + 1)``, stamped when each block is built."""
    from tidegate.dev.devchain import DevChain

    now = [time.time()]
    chain = DevChain(num_accounts=2, clock=lambda: now[0])
    sender, receiver = chain.accounts[0].address, chain.accounts[1].address
    for i in range(500):  # one block a second: the chain must keep to the clock
        now[0] += 1.0
        if i % 50:
            chain.mine()
        else:
            chain.w3.eth.send_transaction({"from": sender, "to": receiver, "value": 1})
    assert chain.w3.eth.block_number == 500
    assert abs(chain.latest_timestamp() - now[0]) <= 2
    # A burst runs ahead (timestamps must increase); an idle chain comes back to the clock.
    for _ in range(20):
        chain.mine()
    assert chain.latest_timestamp() - now[0] >= 19
    now[0] += 600
    chain.w3.eth.send_transaction({"from": sender, "to": receiver, "value": 1})
    assert abs(chain.latest_timestamp() - now[0]) <= 1
    # evm_increaseTime's offset applies from the next block and is undone by a revert.
    snapshot = chain.snapshot()
    assert chain.increase_time(3600) == 3600
    chain.mine()
    assert abs(chain.latest_timestamp() - (now[0] + 3600)) <= 1
    chain.revert(snapshot)
    now[0] += 5
    chain.mine()
    assert abs(chain.latest_timestamp() - now[0]) <= 1
    with pytest.raises(ValueError, match="forward"):
        chain.increase_time(-1)
