"""Publish and order on the test chain; the contract checks our provider-fee signatures."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from tests.chain_fixtures import ChainFacade
from tidegate.dev import ocean_txs
from tidegate.dev.deploy import OceanAddresses
from tidegate.fees.provider_fees import ProviderFee, build_provider_data, sign_provider_fee

ONE = 10**18
DDO = b'{"@context":["https://w3id.org/did/v1"],"id":"did:op:1234"}'


def events(w3: Web3, name: str, emitter: str, event: str, receipt: TxReceipt) -> list[Any]:
    source = ocean_txs.contract(w3, name, emitter)
    decoded = source.events[event]().process_receipt(receipt, errors=DISCARD)
    return [log["args"] for log in decoded if log["address"] == source.address]


def ocean_balance(w3: Web3, addresses: OceanAddresses, who: str) -> int:
    ocean = ocean_txs.contract(w3, "OceanToken", addresses["Ocean"])
    return int(ocean.functions.balanceOf(who).call())


def quote(
    chain: ChainFacade, addresses: OceanAddresses, datatoken: str, amount: int
) -> ProviderFee:
    data = build_provider_data(None, 1795533607.358028, datatoken, "access-1")
    return sign_provider_fee(
        chain.private_key(3),
        provider_data=data,
        fee_token=addresses["Ocean"],
        fee_amount=amount,
        valid_until=chain.latest_timestamp() + 600,
    )


def order(
    txs: ocean_txs.Transactor,
    addresses: OceanAddresses,
    variant: ocean_txs.Variant,
    publisher: LocalAccount,
    consumer: LocalAccount,
    datatoken: str,
    fee: ProviderFee,
) -> HexStr:
    if variant == "plain":
        ocean_txs.mint_datatoken(txs, publisher, datatoken, consumer.address, ONE)
        return ocean_txs.start_order(txs, consumer, datatoken, consumer.address, 0, fee)
    if variant == "fixed_rate":
        return ocean_txs.buy_from_fre_and_order(
            txs, addresses, consumer, datatoken, consumer.address, 0, fee
        )
    return ocean_txs.buy_from_dispenser_and_order(
        txs, addresses, consumer, datatoken, consumer.address, 0, fee
    )


@pytest.mark.parametrize("variant", ["plain", "fixed_rate", "dispenser"])
def test_publish_then_order_with_a_signed_provider_fee(
    chain: ChainFacade, txs: ocean_txs.Transactor,
    addresses: OceanAddresses,
    publisher: LocalAccount,
    consumer: LocalAccount,
    provider: LocalAccount,
    variant: ocean_txs.Variant,
) -> None:
    w3 = chain.w3
    nft, dt = ocean_txs.create_data_nft_with_datatoken(txs, addresses, publisher, variant)
    nft_contract = ocean_txs.contract(w3, "ERC721Template", nft)
    assert nft_contract.functions.isDeployed(dt).call()

    meta_tx = ocean_txs.set_metadata(
        txs,
        publisher,
        nft,
        0,
        "http://provider:8030",
        provider.address,
        b"\x00",
        DDO,
        hashlib.sha256(DDO).digest(),
    )
    (created,) = events(
        w3, "ERC721Template", nft, "MetadataCreated", w3.eth.get_transaction_receipt(meta_tx)
    )
    assert (created["data"], created["decryptorUrl"]) == (DDO, "http://provider:8030")

    paid_before = ocean_balance(w3, addresses, consumer.address)
    fee = quote(chain, addresses, dt, 2 * ONE)
    receipt = w3.eth.get_transaction_receipt(
        order(txs, addresses, variant, publisher, consumer, dt, fee)
    )

    (started,) = events(w3, "ERC20Template", dt, "OrderStarted", receipt)
    assert started["consumer"] == started["payer"] == consumer.address
    assert (started["amount"], started["serviceIndex"]) == (ONE, 0)
    (emitted,) = events(w3, "ERC20Template", dt, "ProviderFee", receipt)
    assert emitted["providerFeeAddress"] == provider.address
    assert emitted["providerFeeToken"] == addresses["Ocean"]
    assert emitted["providerFeeAmount"] == 2 * ONE
    assert emitted["providerData"] == fee.provider_data
    assert (emitted["v"], emitted["r"], emitted["s"]) == (fee.v, fee.r, fee.s)
    assert emitted["validUntil"] == fee.valid_until
    assert ocean_balance(w3, addresses, provider.address) == 2 * ONE
    price = ONE if variant == "fixed_rate" else 0  # rate 1 OCEAN per datatoken
    assert paid_before - ocean_balance(w3, addresses, consumer.address) >= 2 * ONE + price
    if variant == "plain":  # template 1 pays the collector 0.97 DT and OPC 0.03 DT
        datatoken = ocean_txs.contract(w3, "ERC20Template", dt)
        assert datatoken.functions.balanceOf(publisher.address).call() == ONE * 97 // 100
        opc = addresses["OPFCommunityFeeCollector"]
        assert datatoken.functions.balanceOf(opc).call() == ONE * 3 // 100


@pytest.mark.parametrize("tamper", ["wrong_key", "changed_amount", "changed_data"])
def test_start_order_rejects_a_badly_signed_fee(
    chain: ChainFacade, txs: ocean_txs.Transactor,
    addresses: OceanAddresses,
    publisher: LocalAccount,
    consumer: LocalAccount,
    tamper: str,
) -> None:
    _, dt = ocean_txs.create_data_nft_with_datatoken(txs, addresses, publisher)
    ocean_txs.mint_datatoken(txs, publisher, dt, consumer.address, ONE)
    fee = quote(chain, addresses, dt, 0)
    if tamper == "wrong_key":
        other = sign_provider_fee(
            chain.private_key(4),
            provider_data=fee.provider_data,
            fee_token=fee.provider_fee_token,
            fee_amount=0,
            valid_until=fee.valid_until,
        )
        fee = dataclasses.replace(other, provider_fee_address=fee.provider_fee_address)
    elif tamper == "changed_amount":
        fee = dataclasses.replace(fee, provider_fee_amount=1)
    else:
        changed = fee.provider_data.replace(b"access", b"acce5s")
        fee = dataclasses.replace(fee, provider_data=changed)
    with pytest.raises(ocean_txs.OceanTxError, match=r"startOrder failed.*Invalid provider fee"):
        ocean_txs.start_order(txs, consumer, dt, consumer.address, 0, fee)


def test_reuse_order_and_metadata_state(
    chain: ChainFacade, txs: ocean_txs.Transactor, addresses: OceanAddresses,
    publisher: LocalAccount, consumer: LocalAccount,
) -> None:
    w3 = chain.w3
    nft, dt = ocean_txs.create_data_nft_with_datatoken(txs, addresses, publisher)
    ocean_txs.mint_datatoken(txs, publisher, dt, consumer.address, ONE)
    free = quote(chain, addresses, dt, 0)
    first = ocean_txs.start_order(txs, consumer, dt, consumer.address, 0, free)
    reuse = ocean_txs.reuse_order(txs, consumer, dt, first, quote(chain, addresses, dt, ONE // 2))
    receipt = w3.eth.get_transaction_receipt(reuse)
    (reused,) = events(w3, "ERC20Template", dt, "OrderReused", receipt)
    assert "0x" + reused["orderTxId"].hex() == first
    assert reused["caller"] == consumer.address
    assert len(events(w3, "ERC20Template", dt, "ProviderFee", receipt)) == 1

    ocean_txs.set_metadata(
        txs,
        publisher,
        nft,
        0,
        "http://p",
        publisher.address,
        b"\x00",
        DDO,
        hashlib.sha256(DDO).digest(),
    )
    ocean_txs.set_metadata_state(txs, publisher, nft, 4)
    state = ocean_txs.contract(w3, "ERC721Template", nft).functions.getMetaData().call()[2]
    assert state == 4


def test_approve_and_transfer(
    chain: ChainFacade, txs: ocean_txs.Transactor, addresses: OceanAddresses, consumer: LocalAccount
) -> None:
    w3, spender = chain.w3, chain.accounts[6]
    ocean = ocean_txs.contract(w3, "OceanToken", addresses["Ocean"])
    ocean_txs.approve(txs, consumer, addresses["Ocean"], spender.address, 5 * ONE)
    assert ocean.functions.allowance(consumer.address, spender.address).call() == 5 * ONE
    ocean_txs.transfer(txs, consumer, addresses["Ocean"], spender.address, 3 * ONE)
    assert ocean_balance(w3, addresses, spender.address) == 3 * ONE


def test_nonces_recover_after_a_revert(
    chain: ChainFacade, txs: ocean_txs.Transactor, addresses: OceanAddresses, consumer: LocalAccount
) -> None:
    w3, receiver = chain.w3, chain.accounts[6].address
    snapshot = chain.snapshot()
    ocean_txs.transfer(txs, consumer, addresses["Ocean"], receiver, 1)
    chain.revert(snapshot)
    # No stale nonce is kept: anvil would queue a too-high one and never mine it.
    ocean_txs.transfer(txs, consumer, addresses["Ocean"], receiver, 1)
    ocean_txs.transfer(txs, consumer, addresses["Ocean"], receiver, 1)
    assert ocean_balance(w3, addresses, receiver) == 2


def test_a_refused_transaction_is_not_resent(
    chain: ChainFacade, txs: ocean_txs.Transactor, addresses: OceanAddresses, provider: LocalAccount
) -> None:
    w3 = chain.w3
    poor = w3.eth.account.create()
    ocean = ocean_txs.contract(w3, "OceanToken", addresses["Ocean"])
    with pytest.raises(ocean_txs.OceanTxError, match="transfer: sending failed"):
        txs.send(poor, ocean.functions.transfer(provider.address, 0))
    assert w3.eth.get_transaction_count(poor.address) == 0


def test_unknown_variant_and_missing_address(
    chain: ChainFacade, txs: ocean_txs.Transactor, addresses: OceanAddresses,
    publisher: LocalAccount,
) -> None:
    with pytest.raises(ValueError, match="unknown datatoken variant"):
        ocean_txs.create_data_nft_with_datatoken(txs, addresses, publisher, "pool")  # type: ignore[arg-type]
    with pytest.raises(ocean_txs.OceanTxError, match="no 'ERC721Factory'"):
        ocean_txs.create_data_nft_with_datatoken(txs, {}, publisher)


def test_concurrent_senders_get_distinct_nonces(
    chain: ChainFacade, txs: ocean_txs.Transactor, addresses: OceanAddresses, consumer: LocalAccount
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    w3, receiver = chain.w3, chain.accounts[7].address
    with ThreadPoolExecutor(max_workers=4) as pool:
        hashes = list(pool.map(
            lambda _: ocean_txs.transfer(txs, consumer, addresses["Ocean"], receiver, 1), range(8)
        ))
    assert len(set(hashes)) == 8
    assert ocean_balance(w3, addresses, receiver) == 8
    assert txs.in_flight(consumer.address) == 0  # nothing kept once all were mined
