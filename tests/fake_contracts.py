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


def erc1271_wallet_runtime(owner: str) -> bytes:
    """A hand-assembled ERC-1271 smart account owned by the key of ``owner``.

    ``isValidSignature(bytes32 hash, bytes sig)`` with a 65-byte ``sig`` (r, s, v at
    calldata 100, 132, 164) answers the magic ``0x1626ba7e`` iff ``ecrecover(hash, v,
    r, s) == owner`` (the owner signs the hash itself, no prefix), else 32 zero bytes:

        6004 35 6000 52                 mstore(0, hash)
        60a4 35 60f8 1c 6020 52         mstore(32, v = calldata[164] >> 248)
        6064 35 6040 52                 mstore(64, r)
        6084 35 6060 52                 mstore(96, s)
        6020 6080 6080 6000 6001 5a fa 50   staticcall(gas, 1, 0, 128, 128, 32); pop
        6080 51 73<owner> 14 60<ok> 57  jumpi(ok, mload(128) == owner)
        6020 60a0 f3                    return(160, 32): zeros
        ok: 5b 63 1626ba7e 60e0 1b 6000 52 6020 6000 f3   return the magic, left-aligned
    """
    head = bytes.fromhex(
        "600435600052" "60a43560f81c602052" "606435604052" "608435606052"
        "60206080608060006001 5afa50".replace(" ", "") + "60805173")
    body = bytes.fromhex(owner[2:]) + bytes([0x14, 0x60])
    tail_before_ok = bytes([0x57]) + bytes.fromhex("602060a0f3")
    ok = len(head) + len(body) + 1 + len(tail_before_ok)
    return (head + body + bytes([ok]) + tail_before_ok
            + bytes.fromhex("5b631626ba7e60e01b60005260206000f3"))


def deploy_runtime(w3: Web3, account: LocalAccount, runtime: bytes) -> str:
    """Deploy ``runtime`` as a contract's code; returns its address."""
    initcode = bytes([0x60, len(runtime), 0x80, 0x60, 0x0B, 0x60, 0x00, 0x39, 0x60, 0x00,
                      0xF3]) + runtime
    tx = {"from": account.address, "data": initcode, "gas": 200_000,
          "nonce": w3.eth.get_transaction_count(account.address),
          "chainId": w3.eth.chain_id, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), poll_latency=0.01)
    assert receipt["status"] == 1 and receipt["contractAddress"]
    return str(receipt["contractAddress"])
