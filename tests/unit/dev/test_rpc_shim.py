"""The dev chain over HTTP JSON-RPC, seen by web3 8 (sync and async) and raw clients."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import Wei

from tidegate.chain.contracts import load_artifact
from tidegate.dev import ocean_txs
from tidegate.dev.deploy import OceanAddresses
from tidegate.dev.devchain import DevChain
from tidegate.dev.rpc_shim import RpcServer

pytestmark = pytest.mark.devchain_only  # the shim serves the in-process chain only


@pytest.fixture
def w3(chain: DevChain, rpc_server: RpcServer) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_server.url))


@pytest.fixture
def rpc(chain: DevChain, rpc_server: RpcServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rpc_server.url) as client:
        yield client


def call(client: httpx.Client, method: str, *params: Any) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    answer: dict[str, Any] = client.post("/", json=body).json()
    return answer


def test_identity_over_http(w3: Web3, chain: DevChain) -> None:
    assert w3.eth.chain_id == 8996
    assert w3.net.version == "8996"
    assert list(w3.eth.accounts) == [a.address for a in chain.accounts]
    assert w3.eth.block_number == chain.w3.eth.block_number
    assert w3.is_connected()


def test_signed_transaction_receipt_and_logs(
    w3: Web3, addresses: OceanAddresses, consumer: LocalAccount, rpc: httpx.Client
) -> None:
    recipient = "0x000000000000000000000000000000000000bEEF"
    txs = ocean_txs.Transactor(w3)
    tx_hash = ocean_txs.transfer(txs, consumer, addresses["Ocean"], recipient, 7)
    receipt = w3.eth.get_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    ocean = ocean_txs.contract(w3, "OceanToken", addresses["Ocean"])
    (event,) = ocean.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert (event["args"]["to"], event["args"]["value"]) == (recipient, 7)
    logs = w3.eth.get_logs(
        {"address": ocean.address, "fromBlock": receipt["blockNumber"], "toBlock": "latest"}
    )
    assert [log["transactionHash"] for log in logs] == [receipt["transactionHash"]]
    # The receipt's bloom (computed by the shim) equals the block's (computed by py-evm).
    raw_receipt = call(rpc, "eth_getTransactionReceipt", tx_hash)["result"]
    raw_block = call(rpc, "eth_getBlockByNumber", raw_receipt["blockNumber"], True)["result"]
    assert len(raw_receipt["logsBloom"]) == 2 + 512
    assert raw_receipt["logsBloom"] == raw_block["logsBloom"]
    assert raw_receipt["logs"][0]["removed"] is False
    (raw_tx,) = raw_block["transactions"]
    assert raw_tx["hash"] == tx_hash
    assert raw_tx["input"].startswith("0xa9059cbb")  # transfer(address,uint256)
    assert raw_tx["blockNumber"] == raw_receipt["blockNumber"]


def test_reverting_call_raises_contract_logic_error(
    w3: Web3, addresses: OceanAddresses, consumer: LocalAccount
) -> None:
    ocean = ocean_txs.contract(w3, "OceanToken", addresses["Ocean"])
    mint = ocean.functions.mint(consumer.address, 1)
    with pytest.raises(ContractLogicError, match="Ownable: caller is not the owner") as info:
        mint.call({"from": consumer.address})
    assert str(info.value.data).startswith("0x08c379a0")
    with pytest.raises(ContractLogicError, match="Ownable: caller is not the owner"):
        mint.estimate_gas({"from": consumer.address})


def test_failed_transaction_reports_the_reason(
    w3: Web3, addresses: OceanAddresses, consumer: LocalAccount
) -> None:
    ocean = ocean_txs.contract(w3, "OceanToken", addresses["Ocean"])
    with pytest.raises(ocean_txs.OceanTxError, match=r"mint failed in tx 0x.*caller is not"):
        ocean_txs.Transactor(w3).send(consumer, ocean.functions.mint(consumer.address, 1),
                                      gas=100_000)


def test_unlocked_send_transaction(w3: Web3, chain: DevChain) -> None:
    sender, receiver = chain.accounts[5].address, chain.accounts[6].address
    before = w3.eth.get_balance(receiver)
    tx_hash = w3.eth.send_transaction({"from": sender, "to": receiver, "value": Wei(12345)})
    assert w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)["status"] == 1
    assert w3.eth.get_balance(receiver) == before + 12345
    transaction = w3.eth.get_transaction(tx_hash)
    assert transaction["from"] == sender and transaction["value"] == 12345


def test_protocol_errors_batches_and_notifications(rpc: httpx.Client) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "net_version", "params": []},
        {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []},  # notification
        {"jsonrpc": "2.0", "id": 3, "method": "no_suchMethod", "params": []},
    ]
    answers = rpc.post("/", json=batch).json()
    assert [a["id"] for a in answers] == [1, 2, 3]
    assert answers[0]["result"] == "0x2324" and answers[1]["result"] == "8996"
    assert answers[2]["error"]["code"] == -32601
    assert rpc.post("/", content=b"{oops").json()["error"]["code"] == -32700
    assert rpc.post("/", json=[]).json()["error"]["code"] == -32600
    assert rpc.post("/", json={"id": 4}).json()["error"]["code"] == -32600
    bad_params = call(rpc, "eth_getBalance", "not-an-address", "latest")
    assert bad_params["error"]["code"] in (-32602, -32000)
    assert rpc.get("/").status_code == 405
    assert call(rpc, "eth_gasPrice")["result"].startswith("0x")
    assert call(rpc, "eth_maxPriorityFeePerGas")["result"].startswith("0x")
    history = call(rpc, "eth_feeHistory", "0x2", "latest", [25, 75])["result"]
    latest = int(call(rpc, "eth_blockNumber")["result"], 16)
    assert int(history["oldestBlock"], 16) == latest - 1
    assert len(history["baseFeePerGas"]) == 3 and len(history["gasUsedRatio"]) == 2
    assert [len(rewards) for rewards in history["reward"]] == [2, 2]
    assert call(rpc, "web3_clientVersion")["result"]


def test_snapshot_revert_mine_and_increase_time(rpc: httpx.Client, chain: DevChain) -> None:
    start = int(call(rpc, "eth_blockNumber")["result"], 16)
    snapshot = call(rpc, "evm_snapshot")["result"]
    call(rpc, "evm_mine")
    before = chain.latest_timestamp()
    offset = call(rpc, "evm_increaseTime", 7200)["result"]
    assert isinstance(offset, int) and offset >= 7200  # the total offset, as on anvil
    assert int(call(rpc, "eth_blockNumber")["result"], 16) == start + 1  # no block yet
    call(rpc, "evm_mine")
    assert chain.latest_timestamp() >= max(before + 1, int(time.time()) + 7200 - 2)
    assert int(call(rpc, "eth_blockNumber")["result"], 16) == start + 2
    assert call(rpc, "evm_revert", snapshot)["result"] is True
    assert int(call(rpc, "eth_blockNumber")["result"], 16) == start
    assert call(rpc, "evm_revert", "0xfffffff")["result"] is False
    past = call(rpc, "evm_mine", 1)  # a timestamp before the latest block
    assert past["error"]["code"] == -32602 and "after the latest" in past["error"]["message"]
    assert call(rpc, "evm_increaseTime", "soon")["error"]["code"] == -32602
    assert call(rpc, "evm_increaseTime", -5)["error"]["code"] == -32602


def test_signing_errors(rpc: httpx.Client, chain: DevChain) -> None:
    stranger = "0x000000000000000000000000000000000000bEEF"
    refused = call(rpc, "personal_sign", "0x68656c6c6f", stranger)
    assert refused["error"]["code"] == -32000 and "not unlocked" in refused["error"]["message"]
    me = chain.accounts[2].address
    assert call(rpc, "eth_sign", me)["error"]["code"] == -32602
    assert call(rpc, "eth_sign", "me", "0x00")["error"]["code"] == -32602
    assert call(rpc, "eth_signTypedData_v4", me, "{not json")["error"]["code"] == -32602
    assert call(rpc, "eth_signTypedData_v4", me, {"types": {}})["error"]["code"] == -32602
    # personal_sign with its two parameters swapped, as some clients send them.
    swapped = call(rpc, "personal_sign", me, "0x68656c6c6f")["result"]
    assert swapped == call(rpc, "personal_sign", "0x68656c6c6f", me)["result"]


async def test_async_web3_over_http(
    chain: DevChain, rpc_server: RpcServer, addresses: OceanAddresses, consumer: LocalAccount
) -> None:
    w3 = AsyncWeb3(AsyncHTTPProvider(rpc_server.url))
    try:
        assert await w3.eth.chain_id == 8996
        address = Web3.to_checksum_address(addresses["Ocean"])
        ocean = w3.eth.contract(address=address, abi=load_artifact("OceanToken").abi)
        recipient, sender = chain.accounts[8].address, consumer.address
        tx = await ocean.functions.transfer(recipient, 99).build_transaction(
            {"from": consumer.address, "nonce": await w3.eth.get_transaction_count(sender)}
        )
        signed = consumer.sign_transaction(cast(dict[str, Any], tx))
        tx_hash = await w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = await w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
        assert receipt["status"] == 1
        (event,) = ocean.events.Transfer().process_receipt(receipt, errors=DISCARD)
        assert event["args"]["value"] == 99
        logs = await w3.eth.get_logs(
            {"address": ocean.address, "fromBlock": receipt["blockNumber"]}
        )
        assert len(logs) == 1
        assert await ocean.functions.balanceOf(recipient).call() == 99
        with pytest.raises(ContractLogicError, match="Ownable: caller is not the owner"):
            await ocean.functions.mint(recipient, 1).call({"from": consumer.address})
    finally:
        await w3.provider.disconnect()
