"""The Escrow client against the real contract on the session chain."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from tests.chain_fixtures import ChainHarness
from tests.escrow_helpers import authorize, deposit, escrow_events, fund, payer_funds
from tests.helpers import PROVIDER_ADDRESS, PROVIDER_KEY
from tidegate.chain.clients import ChainConfig, build_web3, rpc_session
from tidegate.chain.escrow import Claim, EscrowClient, job_id_hash
from tidegate.chain.transactions import (
    ProviderSender,
    TransactionRevertedError,
    TransactionUnavailableError,
)
from tidegate.dev.ocean_txs import ONE_TOKEN

pytestmark = pytest.mark.chain


@pytest.fixture
def escrow(chain_config: ChainConfig) -> EscrowClient:
    return EscrowClient.for_chain(chain_config)


def test_job_ids_are_the_sha256_of_the_job_id_as_ocean_node_hashes_them() -> None:
    # Ocean Node: create256Hash(jobId) = "0x" + sha256(jobId).hex(), read as uint256.
    assert job_id_hash("abc") == int(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 16)
    job = "0b3f2e1c-7c59-4c8c-9ad0-5d1f1b1a2b3c"
    assert job_id_hash(job) == int.from_bytes(hashlib.sha256(job.encode()).digest(), "big")


async def test_reads_follow_the_consumers_deposit_and_authorization(
        harness: ChainHarness, escrow: EscrowClient) -> None:
    ocean, payer = harness.addresses["Ocean"], harness.consumer.address
    assert escrow.payee == PROVIDER_ADDRESS
    assert escrow.address == harness.addresses["Escrow"]
    assert await escrow.token_decimals(ocean) == 18
    assert (await escrow.funds(payer, ocean)).available == 0
    assert await escrow.authorization(payer, ocean) is None
    deposit(harness, 30 * ONE_TOKEN)
    authorize(harness, 20 * ONE_TOKEN, 7200, 3)
    funds = await escrow.funds(payer, ocean)
    assert (funds.available, funds.locked) == (30 * ONE_TOKEN, 0)
    auth = await escrow.authorization(payer, ocean)
    assert auth is not None
    assert (auth.payee, auth.max_locked_amount, auth.max_lock_seconds, auth.max_lock_counts,
            auth.current_locked_amount, auth.current_locks) == (
        PROVIDER_ADDRESS, 20 * ONE_TOKEN, 7200, 3, 0, 0)


async def test_lock_then_batched_claim_of_two_jobs(
        harness: ChainHarness, escrow: EscrowClient) -> None:
    ocean, payer = harness.addresses["Ocean"], harness.consumer.address
    fund(harness, 50 * ONE_TOKEN)
    first, second = job_id_hash("job-a"), job_id_hash("job-b")
    await escrow.create_lock(first, ocean, payer, 10 * ONE_TOKEN, 3600)
    await escrow.create_lock(second, ocean, payer, 5 * ONE_TOKEN, 3600)
    locks = await escrow.locks(token=ocean, payer=payer)
    assert {(lock.job_id, lock.amount) for lock in locks} == {
        (first, 10 * ONE_TOKEN), (second, 5 * ONE_TOKEN)}
    lock = await escrow.lock(first, ocean, payer)
    assert lock is not None and lock.expiry - lock.start_time == 3600
    assert await escrow.locks(payer="0x" + "12" * 20) == []
    assert payer_funds(harness) == (35 * ONE_TOKEN, 15 * ONE_TOKEN)
    auth = await escrow.authorization(payer, ocean)
    assert auth is not None and (auth.current_locks, auth.current_locked_amount) == (
        2, 15 * ONE_TOKEN)

    outcome = await escrow.claim([Claim(first, ocean, payer, 4 * ONE_TOKEN, b"proof-a"),
                                  Claim(second, ocean, payer, 5 * ONE_TOKEN)])
    assert outcome.claimed == {first: 4 * ONE_TOKEN, second: 5 * ONE_TOKEN}
    assert outcome.cancelled == {}
    # One transaction for both; the 6 unclaimed OCEAN returned to the payer.
    claimed = escrow_events(harness, "Claimed")
    assert {e["transactionHash"].to_0x_hex() for e in claimed} == {outcome.tx_hash}
    assert payer_funds(harness) == (41 * ONE_TOKEN, 0)
    assert await escrow.locks() == []


async def test_a_refused_lock_carries_the_contracts_reason(
        harness: ChainHarness, escrow: EscrowClient) -> None:
    ocean, payer = harness.addresses["Ocean"], harness.consumer.address
    deposit(harness, 5 * ONE_TOKEN)
    with pytest.raises(TransactionRevertedError) as info:
        await escrow.create_lock(job_id_hash("j"), ocean, payer, ONE_TOKEN, 60)
    assert info.value.status == 400 and info.value.reason == "No auth found"
    authorize(harness, 10 * ONE_TOKEN, 60, 1)
    with pytest.raises(TransactionRevertedError, match="Expiry too high"):
        await escrow.create_lock(job_id_hash("j"), ocean, payer, ONE_TOKEN, 61)
    with pytest.raises(TransactionRevertedError, match="Payer does not have enough funds"):
        await escrow.create_lock(job_id_hash("j"), ocean, payer, 6 * ONE_TOKEN, 60)
    await escrow.create_lock(job_id_hash("j"), ocean, payer, ONE_TOKEN, 60)
    with pytest.raises(TransactionRevertedError, match="Exceeds maxLockCounts"):
        await escrow.create_lock(job_id_hash("k"), ocean, payer, ONE_TOKEN, 60)


async def test_an_expired_lock_is_cancelled_and_refunded(
        harness: ChainHarness, escrow: EscrowClient) -> None:
    ocean, payer = harness.addresses["Ocean"], harness.consumer.address
    fund(harness, 20 * ONE_TOKEN)
    job = job_id_hash("late")
    await escrow.create_lock(job, ocean, payer, 8 * ONE_TOKEN, 120)
    lock = await escrow.lock(job, ocean, payer)
    assert lock is not None
    # Not expired yet: the cancel leaves it alone.
    outcome = await escrow.cancel_expired_locks([(job, ocean, payer)])
    assert outcome.cancelled == {} and await escrow.lock(job, ocean, payer) is not None
    harness.chain.mine(lock.expiry + 5)
    outcome = await escrow.cancel_expired_locks([(job, ocean, payer)])
    assert outcome.cancelled == {job: 8 * ONE_TOKEN}
    assert payer_funds(harness) == (20 * ONE_TOKEN, 0)
    assert await escrow.lock(job, ocean, payer) is None


async def test_a_claim_after_expiry_cancels_the_lock_instead(
        harness: ChainHarness, escrow: EscrowClient) -> None:
    ocean, payer = harness.addresses["Ocean"], harness.consumer.address
    fund(harness, 20 * ONE_TOKEN)
    job = job_id_hash("too-late")
    await escrow.create_lock(job, ocean, payer, 8 * ONE_TOKEN, 60)
    lock = await escrow.lock(job, ocean, payer)
    assert lock is not None
    harness.chain.mine(lock.expiry + 5)
    outcome = await escrow.claim([Claim(job, ocean, payer, 8 * ONE_TOKEN)])
    assert (outcome.claimed, outcome.cancelled) == ({}, {job: 8 * ONE_TOKEN})
    assert payer_funds(harness) == (20 * ONE_TOKEN, 0)


async def test_an_unreachable_rpc_is_a_503_without_the_url(chain_config: ChainConfig) -> None:
    session = rpc_session()
    url = "http://127.0.0.1:9/secret-rpc-path"
    try:
        web3 = build_web3(url, 2, session, chain_id=8996)
        escrow = EscrowClient(web3, chain_config.contract_address("Escrow"),
                              ProviderSender(web3, PROVIDER_KEY))
        for call in (escrow.funds(PROVIDER_ADDRESS, chain_config.fee_token),
                     escrow.create_lock(1, chain_config.fee_token, PROVIDER_ADDRESS, 1, 1)):
            with pytest.raises(TransactionUnavailableError) as info:
                await call
            assert info.value.status == 503
            assert "127.0.0.1" not in info.value.message and "secret" not in info.value.message
    finally:
        await session.close()


def test_the_sender_never_shows_its_key(chain_config: Any) -> None:
    sender = ProviderSender(chain_config.web3, PROVIDER_KEY)
    assert PROVIDER_KEY[2:] not in repr(sender) and PROVIDER_ADDRESS in repr(sender)


async def test_two_senders_of_one_key_both_get_their_transactions_mined(
        harness: ChainHarness, chain_config: ChainConfig) -> None:
    """Two worker processes with the provider key send at once: a nonce the other took
    is replaced by the next, no transaction is lost."""
    ocean, payer = harness.addresses["Ocean"], harness.consumer.address
    fund(harness, 50 * ONE_TOKEN)
    escrows = [EscrowClient.for_chain(chain_config) for _ in range(2)]  # a sender each
    await asyncio.gather(*(escrows[i % 2].create_lock(job_id_hash(f"w{i}"), ocean, payer,
                                                      ONE_TOKEN, 3600) for i in range(6)))
    assert {lock.job_id for lock in await escrows[0].locks()} == {
        job_id_hash(f"w{i}") for i in range(6)}
