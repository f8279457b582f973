"""A hand-assembled "event replayer" contract, to prove forged events are refused.

The reference Provider decoded OrderStarted / ProviderFee by topic only, so any
contract re-emitting a provider-signed fee (free from /initialize) and an
OrderStarted could pass for a paid order. This contract emits, in one call, two
LOG3 records whose topics and data it takes from the calldata:

    calldata[0:96]    topics of event 1      calldata[96:256]  data of event 1 (160 bytes)
    calldata[256:352] topics of event 2      calldata[352:]    data of event 2

Runtime code (annotated):
    36 6000 6000 37                     calldatacopy(0, 0, calldatasize)
    6040 51 6020 51 6000 51             mload(64), mload(32), mload(0)   -> t2 t1 t0
    60a0 6060 a3                        log3(96, 160, t0, t1, t2)
    610140 51 610120 51 610100 51       mload(320), mload(288), mload(256)
    610160 36 03 610160 a3              log3(352, calldatasize - 352, t0, t1, t2)
    00                                  stop
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3 import Web3

RUNTIME = bytes.fromhex(
    "36600060003760405160205160005160a06060a3"
    "6101405161012051610100516101603603610160a300"
)
# PUSH1 len, DUP1, PUSH1 11, PUSH1 0, CODECOPY, PUSH1 0, RETURN, then the runtime.
INITCODE = (
    bytes([0x60, len(RUNTIME), 0x80, 0x60, 0x0B, 0x60, 0x00, 0x39, 0x60, 0x00, 0xF3]) + RUNTIME
)


def deploy_replayer(w3: Web3, account: LocalAccount) -> str:
    tx = {"from": account.address, "data": INITCODE, "gas": 200_000,
          "nonce": w3.eth.get_transaction_count(account.address),
          "chainId": w3.eth.chain_id, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), poll_latency=0.01)
    assert receipt["status"] == 1 and receipt["contractAddress"]
    return str(receipt["contractAddress"])


def replay_events(w3: Web3, account: LocalAccount, replayer: str, order_log: dict,
                  fee_log: dict) -> str:
    """Re-emit a copied OrderStarted and ProviderFee from the replayer; returns the tx hash."""
    def topics(log: dict) -> bytes:
        assert len(log["topics"]) == 3
        return b"".join(bytes(t) for t in log["topics"])

    order_data = bytes(order_log["data"])
    assert len(order_data) == 160
    calldata = topics(order_log) + order_data + topics(fee_log) + bytes(fee_log["data"])
    tx = {"from": account.address, "to": replayer, "data": calldata, "gas": 300_000,
          "nonce": w3.eth.get_transaction_count(account.address),
          "chainId": w3.eth.chain_id, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
    assert receipt["status"] == 1 and len(receipt["logs"]) == 2
    return tx_hash.to_0x_hex()
