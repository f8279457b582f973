"""Paid compute through the real Escrow contract on the session chain: quote, lock,
claim, partial use, refunds, refusal before the job, and claims that fail, are retried
and succeed exactly once (also across a restart)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.chain_fixtures import ChainHarness
from tests.conftest import open_store
from tests.escrow_helpers import (
    authorize,
    deposit,
    escrow_events,
    fund,
    ocean_balance,
    opc_fee,
    payer_funds,
)
from tests.faults import CuttableProxy
from tests.helpers import PROVIDER_ADDRESS
from tidegate.chain.clients import ChainConfig, build_web3, rpc_session
from tidegate.chain.escrow import Claim, EscrowClient, job_id_hash
from tidegate.chain.transactions import ProviderSender, TransactionUnavailableError
from tidegate.dev.ocean_txs import ONE_TOKEN, contract
from tidegate.fees.claim_queue import CLAIMED, EXPIRED, GONE, Backoff, ClaimQueue
from tidegate.fees.compute_cost import Pricing, ResourceRequest
from tidegate.fees.escrow_payments import (
    CLAIM_TIMEOUT,
    EscrowPayments,
    EscrowUnavailableError,
    JobPayment,
    PaymentRefusedError,
    build_escrow_payments,
)
from tidegate.stores.base import CLAIM_PENDING
from tidegate.stores.sqlite import SqliteStore

pytestmark = pytest.mark.chain

# 2 CPUs at 1 OCEAN/min + 4 GB RAM at 0.5 OCEAN/min: 4 OCEAN per started minute.
RESOURCES = (ResourceRequest("cpu", Decimal(2)), ResourceRequest("ram", Decimal(4)),
             ResourceRequest("disk", Decimal(10)))
PER_MINUTE = 4 * ONE_TOKEN
MAX_DURATION = 300  # 5 minutes: 20 OCEAN locked


def pricing_for(harness: ChainHarness, min_job_duration: int = 0) -> Pricing:
    return Pricing(8996, harness.addresses["Ocean"],
                   {"cpu": Decimal(1), "ram": Decimal("0.5")}, min_job_duration)


@dataclass
class Clock:
    """The queue's clock, moved by the test (backoff without sleeping)."""

    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    harness: ChainHarness
    store: SqliteStore
    clock: Clock
    payments: EscrowPayments
    queue: ClaimQueue
    escrow: EscrowClient
    pricing: Pricing
    proxy: CuttableProxy
    key: str

    async def restart(self) -> None:
        """A new process: a new store object over the same file, a new queue and sender."""
        await self.store.close()
        self.store = SqliteStore(self.store.path)
        await self.store.open()
        web3 = self.escrow.web3
        self.escrow = EscrowClient(web3, self.escrow.address, ProviderSender(web3, self.key))
        self.queue = ClaimQueue(self.store, {8996: self.escrow}, clock=self.clock)
        self.payments = EscrowPayments({8996: self.escrow}, self.queue)


@pytest.fixture
async def setup(harness: ChainHarness, chain_config: ChainConfig,
                tmp_path: Path) -> AsyncIterator[Setup]:
    """EscrowPayments over a SQLite store, its RPC behind a proxy the test can cut."""
    rpc = urlsplit(harness.rpc.url)
    proxy = CuttableProxy(rpc.hostname or "127.0.0.1", rpc.port or 80)
    await proxy.start()
    session = rpc_session()
    url = harness.rpc.url.replace(f":{rpc.port}", f":{proxy.port}")
    web3 = build_web3(url, 5, session, chain_id=8996)
    escrow = EscrowClient(web3, chain_config.contract_address("Escrow"),
                          ProviderSender(web3, chain_config.provider_key, receipt_timeout=10))
    store = SqliteStore(tmp_path / "store.db")
    await store.open()
    clock = Clock()
    queue = ClaimQueue(store, {8996: escrow}, clock=clock)
    s = Setup(harness, store, clock, EscrowPayments({8996: escrow}, queue), queue, escrow,
              pricing_for(harness), proxy, chain_config.provider_key)
    try:
        yield s
    finally:
        await s.store.close()
        await proxy.close()
        await session.close()


def provider_nonce(harness: ChainHarness) -> int:
    return int(harness.chain.w3.eth.get_transaction_count(PROVIDER_ADDRESS))


async def test_quote_is_the_payment_block_ocean_node_answers(setup: Setup) -> None:
    harness = setup.harness
    assert EscrowPayments.quote(setup.pricing, RESOURCES, MAX_DURATION) == Decimal(20)
    quote = await setup.payments.payment_quote(setup.pricing, RESOURCES, MAX_DURATION,
                                               queue_max_wait=60)
    assert quote.to_json() == {
        "escrowAddress": harness.addresses["Escrow"], "payee": PROVIDER_ADDRESS,
        "chainId": 8996, "minLockSeconds": MAX_DURATION + 60 + CLAIM_TIMEOUT,
        "token": harness.addresses["Ocean"], "amount": str(20 * ONE_TOKEN)}
    # The environment's minimum duration raises what a short job is quoted.
    longer = pricing_for(harness, min_job_duration=600)
    assert EscrowPayments.quote(longer, RESOURCES, 60) == Decimal(40)


async def test_lock_at_start_and_full_claim_at_the_end(setup: Setup) -> None:
    harness, payer = setup.harness, setup.harness.consumer.address
    fund(harness, 100 * ONE_TOKEN)
    wallet_before = ocean_balance(harness, PROVIDER_ADDRESS)
    payment = await setup.payments.lock_for_job("job-full", payer, setup.pricing, RESOURCES,
                                                MAX_DURATION)
    assert payment.amount == 20 * ONE_TOKEN and payment.lock_id == job_id_hash("job-full")
    assert payer_funds(harness) == (80 * ONE_TOKEN, 20 * ONE_TOKEN)
    lock = await setup.escrow.lock(payment.lock_id, payment.token, payer)
    assert lock is not None and lock.amount == 20 * ONE_TOKEN
    assert lock.expiry - lock.start_time == MAX_DURATION + CLAIM_TIMEOUT

    # The job record keeps the payment as JSON; settling works from that copy.
    kept = JobPayment.from_json(payment.to_json())
    assert kept == payment
    row = await setup.payments.settle_job(kept, used_seconds=299.5)
    assert row.state == CLAIMED
    assert payer_funds(harness) == (80 * ONE_TOKEN, 0)
    paid = 20 * ONE_TOKEN
    assert ocean_balance(harness, PROVIDER_ADDRESS) - wallet_before == paid - opc_fee(harness, paid)
    [claimed] = escrow_events(harness, "Claimed")
    assert claimed["args"]["amount"] == paid
    assert claimed["args"]["proof"].startswith(b'{"jobId":"job-full"')


async def test_partial_use_claims_less_and_the_rest_returns_to_the_payer(setup: Setup) -> None:
    harness, payer = setup.harness, setup.harness.consumer.address
    fund(harness, 100 * ONE_TOKEN)
    payment = await setup.payments.lock_for_job("job-short", payer, setup.pricing, RESOURCES,
                                                MAX_DURATION)
    row = await setup.payments.settle_job(payment, used_seconds=61)  # 2 started minutes
    assert row.state == CLAIMED
    assert payer_funds(harness) == (100 * ONE_TOKEN - 2 * PER_MINUTE, 0)
    [claimed] = escrow_events(harness, "Claimed")
    assert claimed["args"]["amount"] == 2 * PER_MINUTE
    # What came back is the payer's again: it withdraws all of it to its wallet.
    wallet = ocean_balance(harness, payer)
    available = 100 * ONE_TOKEN - 2 * PER_MINUTE
    escrow = contract(harness.chain.w3, "Escrow", harness.addresses["Escrow"])
    harness.txs.send(harness.consumer, escrow.functions.withdraw(
        [harness.addresses["Ocean"]], [available]), gas=300_000)
    assert ocean_balance(harness, payer) == wallet + available
    assert payer_funds(harness) == (0, 0)
    assert setup.payments.claim_amount(payment, 10_000) == 20 * ONE_TOKEN  # capped at the lock


async def test_a_job_that_never_ran_returns_the_whole_lock(setup: Setup) -> None:
    harness, payer = setup.harness, setup.harness.consumer.address
    fund(harness, 100 * ONE_TOKEN)
    payment = await setup.payments.lock_for_job("job-failed", payer, setup.pricing, RESOURCES,
                                                MAX_DURATION)
    row = await setup.payments.release_job(payment)
    assert row.state == CLAIMED
    assert payer_funds(harness) == (100 * ONE_TOKEN, 0)
    [claimed] = escrow_events(harness, "Claimed")
    assert claimed["args"]["amount"] == 0


async def test_a_job_that_cannot_be_paid_is_refused_before_anything_is_locked(
        setup: Setup) -> None:
    harness, payer, payments = setup.harness, setup.harness.consumer.address, setup.payments

    async def refused(code: str) -> None:
        with pytest.raises(PaymentRefusedError) as info:
            await payments.lock_for_job("job-x", payer, setup.pricing, RESOURCES, MAX_DURATION)
        assert info.value.status == 400 and info.value.code == code, info.value.message
        assert await setup.escrow.locks() == []

    await refused("escrow_insufficient_funds")  # nothing deposited
    deposit(harness, 19 * ONE_TOKEN)
    await refused("escrow_insufficient_funds")  # 20 needed
    deposit(harness, ONE_TOKEN)
    await refused("escrow_not_authorized")
    authorize(harness, 19 * ONE_TOKEN, 10 * 3600, 5)
    await refused("escrow_limit_exceeded")  # at most 19 locked
    authorize(harness, 20 * ONE_TOKEN, MAX_DURATION + CLAIM_TIMEOUT - 1, 5)
    await refused("escrow_limit_exceeded")  # the lock would last one second too long
    authorize(harness, 20 * ONE_TOKEN, MAX_DURATION + CLAIM_TIMEOUT, 0)
    await refused("escrow_limit_exceeded")  # no lock allowed at once
    authorize(harness, 20 * ONE_TOKEN, MAX_DURATION + CLAIM_TIMEOUT, 1)
    payment = await payments.lock_for_job("job-x", payer, setup.pricing, RESOURCES,
                                          MAX_DURATION)
    assert payment.amount == 20 * ONE_TOKEN
    assert payer_funds(harness) == (0, 20 * ONE_TOKEN)


async def test_a_lock_that_expired_before_its_claim_is_refunded(setup: Setup) -> None:
    harness, payer = setup.harness, setup.harness.consumer.address
    fund(harness, 100 * ONE_TOKEN)
    payment = await setup.payments.lock_for_job("job-late", payer, setup.pricing, RESOURCES,
                                                MAX_DURATION)
    lock = await setup.escrow.lock(payment.lock_id, payment.token, payer)
    assert lock is not None
    harness.chain.mine(lock.expiry + 10)
    row = await setup.payments.settle_job(payment, used_seconds=120)
    assert row.state == EXPIRED
    assert payer_funds(harness) == (100 * ONE_TOKEN, 0)  # everything back
    assert escrow_events(harness, "Claimed") == []
    assert len(escrow_events(harness, "Canceled")) == 1


async def test_a_claim_that_fails_is_kept_retried_and_made_exactly_once(setup: Setup) -> None:
    harness, payer = setup.harness, setup.harness.consumer.address
    fund(harness, 100 * ONE_TOKEN)
    payment = await setup.payments.lock_for_job("job-cut", payer, setup.pricing, RESOURCES,
                                                MAX_DURATION)
    await setup.proxy.cut()
    row = await setup.payments.settle_job(payment, used_seconds=120)
    assert (row.state, row.attempts) == (CLAIM_PENDING, 1)
    assert "unavailable" in row.last_error and "127.0.0.1" not in row.last_error
    assert payer_funds(harness) == (80 * ONE_TOKEN, 20 * ONE_TOKEN)  # nothing claimed yet

    # Still down at the next due time: counted again, due later (backoff doubles).
    assert (await setup.queue.retry_due()).final == {}  # not due yet: nothing taken
    setup.clock.now += Backoff().delay(0)
    report = await setup.queue.retry_due()
    assert report.retried == ["job-cut"]
    row2 = await setup.store.get_claim("job-cut")
    assert row2 is not None and row2.attempts == 2
    assert row2.next_attempt_ms == int((setup.clock.now + Backoff().delay(1)) * 1000)

    await setup.proxy.restore()
    nonce = provider_nonce(harness)
    setup.clock.now += Backoff().delay(1)
    assert (await setup.queue.retry_due()).final == {"job-cut": CLAIMED}
    assert provider_nonce(harness) == nonce + 1
    # Settled: later passes and a second settle send nothing.
    setup.clock.now += 3600
    assert (await setup.queue.retry_due()).final == {}
    assert (await setup.payments.settle_job(payment, used_seconds=120)).state == CLAIMED
    assert provider_nonce(harness) == nonce + 1
    [claimed] = escrow_events(harness, "Claimed")
    assert claimed["args"]["amount"] == 2 * PER_MINUTE
    assert payer_funds(harness) == (100 * ONE_TOKEN - 2 * PER_MINUTE, 0)


async def test_the_queue_survives_a_restart(setup: Setup) -> None:
    harness, payer = setup.harness, setup.harness.consumer.address
    fund(harness, 100 * ONE_TOKEN)
    payment = await setup.payments.lock_for_job("job-restart", payer, setup.pricing,
                                                RESOURCES, MAX_DURATION)
    await setup.proxy.cut()
    assert (await setup.payments.settle_job(payment, 200)).state == CLAIM_PENDING
    await setup.restart()
    await setup.proxy.restore()
    setup.clock.now += Backoff().delay(0)
    assert (await setup.queue.retry_due()).final == {"job-restart": CLAIMED}
    [claimed] = escrow_events(harness, "Claimed")
    assert claimed["args"]["amount"] == 4 * PER_MINUTE


async def test_a_claim_sent_before_a_crash_is_looked_up_not_sent_again(setup: Setup) -> None:
    harness, payer = setup.harness, setup.harness.consumer.address
    fund(harness, 100 * ONE_TOKEN)
    payment = await setup.payments.lock_for_job("job-crash", payer, setup.pricing, RESOURCES,
                                                MAX_DURATION)
    claim = Claim(payment.lock_id, payment.token, payer, PER_MINUTE)
    # What a worker that died after sending leaves behind: the row leased, the hash kept.
    await setup.queue.enqueue("job-crash", 8996, claim)
    now_ms = int(setup.clock.now * 1000)
    assert len(await setup.store.take_claims("dead worker", now_ms, 60_000, 1)) == 1
    sent = await setup.escrow.send_claims([claim])
    assert await setup.store.mark_claim_sent("job-crash", "dead worker", sent.tx_hash, now_ms)
    await setup.restart()
    nonce = provider_nonce(harness)
    assert (await setup.queue.retry_due()).final == {}  # the dead worker's lease holds
    setup.clock.now += 61
    assert (await setup.queue.retry_due()).final == {"job-crash": CLAIMED}
    assert provider_nonce(harness) == nonce  # nothing sent again
    final = await setup.store.get_claim("job-crash")
    assert final is not None and final.tx_hash == sent.tx_hash
    assert len(escrow_events(harness, "Claimed")) == 1


async def test_due_claims_of_one_chain_go_in_one_batched_transaction(setup: Setup) -> None:
    harness, payer = setup.harness, setup.harness.consumer.address
    fund(harness, 100 * ONE_TOKEN)
    payments = [await setup.payments.lock_for_job(f"job-{i}", payer, setup.pricing, RESOURCES,
                                                  MAX_DURATION) for i in range(3)]
    await setup.proxy.cut()
    for i, payment in enumerate(payments):
        await setup.payments.settle_job(payment, 60 * (i + 1))
    await setup.proxy.restore()
    # Someone cancelled nothing, but one lock is already gone (claimed by hand).
    await setup.escrow.claim([Claim(payments[2].lock_id, payments[2].token, payer, 0)])
    nonce = provider_nonce(harness)
    setup.clock.now += Backoff().delay(0)
    report = await setup.queue.retry_due()
    assert report.final == {"job-0": CLAIMED, "job-1": CLAIMED, "job-2": GONE}
    assert provider_nonce(harness) == nonce + 1  # one transaction for the two claims
    hashes = {(await setup.store.get_claim(f"job-{i}")).tx_hash  # type: ignore[union-attr]
              for i in (0, 1)}
    assert len(hashes) == 1
    amounts = sorted(e["args"]["amount"] for e in escrow_events(harness, "Claimed"))
    assert amounts == [0, PER_MINUTE, 2 * PER_MINUTE]


async def test_a_lock_whose_receipt_never_came_is_released(setup: Setup) -> None:
    """The lock was mined but its receipt did not arrive in time: the job is refused and
    the queued release returns the lock to the payer instead of waiting for its expiry."""
    harness, payer = setup.harness, setup.harness.consumer.address
    fund(harness, 100 * ONE_TOKEN)
    impatient = EscrowClient(setup.escrow.web3, setup.escrow.address,
                             ProviderSender(setup.escrow.web3, setup.key, receipt_timeout=0))
    payments = EscrowPayments({8996: impatient}, setup.queue)
    with pytest.raises(TransactionUnavailableError):
        await payments.lock_for_job("job-unknown", payer, setup.pricing, RESOURCES,
                                    MAX_DURATION)
    assert payer_funds(harness) == (80 * ONE_TOKEN, 20 * ONE_TOKEN)  # it was locked after all
    row = await setup.store.get_claim("job-unknown")
    assert row is not None and row.state == CLAIM_PENDING
    assert (await setup.queue.retry_due()).final == {"job-unknown": CLAIMED}
    assert payer_funds(harness) == (100 * ONE_TOKEN, 0)
    [claimed] = escrow_events(harness, "Claimed")
    assert claimed["args"]["amount"] == 0


async def test_the_retry_loop_runs_until_stopped(setup: Setup) -> None:
    harness, payer = setup.harness, setup.harness.consumer.address
    fund(harness, 100 * ONE_TOKEN)
    payment = await setup.payments.lock_for_job("job-loop", payer, setup.pricing, RESOURCES,
                                                MAX_DURATION)
    await setup.proxy.cut()
    assert (await setup.payments.settle_job(payment, 30)).state == CLAIM_PENDING
    await setup.proxy.restore()
    setup.clock.now += Backoff().delay(0)
    stop = asyncio.Event()
    loop = asyncio.create_task(setup.queue.run(0.01, stop))
    try:
        async with asyncio.timeout(30):
            while True:
                row = await setup.store.get_claim("job-loop")
                if row is not None and row.state == CLAIMED:
                    break
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 10)
    assert len(escrow_events(harness, "Claimed")) == 1


async def test_expired_locks_nobody_claims_are_swept_back_to_the_payer(setup: Setup) -> None:
    harness, payer = setup.harness, setup.harness.consumer.address
    fund(harness, 100 * ONE_TOKEN)
    ocean = harness.addresses["Ocean"]
    # A lock whose job record was lost: no claim row will ever settle it.
    await setup.escrow.create_lock(job_id_hash("orphan"), ocean, payer, 7 * ONE_TOKEN, 60)
    payment = await setup.payments.lock_for_job("job-alive", payer, setup.pricing, RESOURCES,
                                                MAX_DURATION)
    assert await setup.queue.sweep_expired() == {}  # nothing expired yet
    orphan = await setup.escrow.lock(job_id_hash("orphan"), ocean, payer)
    assert orphan is not None
    harness.chain.mine(orphan.expiry + 5)
    # A second chain whose RPC is down does not stop the sweep of this one.
    session = rpc_session()
    try:
        down = build_web3("http://127.0.0.1:9", 2, session, chain_id=5)
        setup.queue.escrows = {5: EscrowClient(down, setup.escrow.address,
                                               ProviderSender(down, setup.key)),
                               8996: setup.escrow}
        assert await setup.queue.sweep_expired() == {8996: 1}
    finally:
        await session.close()
    assert await setup.escrow.lock(job_id_hash("orphan"), ocean, payer) is None
    assert payer_funds(harness) == (80 * ONE_TOKEN, 20 * ONE_TOKEN)  # the live lock stays
    assert (await setup.payments.settle_job(payment, 60)).state == CLAIMED


async def test_the_composition_root_gets_one_escrow_per_chain_that_has_one(
        chain_config: ChainConfig, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        without = dataclasses.replace(
            chain_config, chain_id=5,
            addresses={k: v for k, v in chain_config.addresses.items() if k != "Escrow"})
        payments = build_escrow_payments([chain_config, without], store)
        assert set(payments.escrows) == {8996}
        assert payments.escrow(8996).payee == PROVIDER_ADDRESS
        with pytest.raises(EscrowUnavailableError) as info:
            payments.escrow(5)
        assert info.value.status == 503
    finally:
        await store.close()


async def test_the_queue_works_the_same_on_either_store(setup: Setup, store_url: str) -> None:
    """A failed claim kept in SQLite or PostgreSQL, retried by a new process, paid once."""
    harness, payer = setup.harness, setup.harness.consumer.address
    fund(harness, 100 * ONE_TOKEN)
    store = open_store(store_url)
    await store.open()
    queue = ClaimQueue(store, {8996: setup.escrow}, clock=setup.clock)
    payments = EscrowPayments({8996: setup.escrow}, queue)
    payment = await payments.lock_for_job("job-store", payer, setup.pricing, RESOURCES,
                                          MAX_DURATION)
    await setup.proxy.cut()
    assert (await payments.settle_job(payment, 100)).state == CLAIM_PENDING
    await store.close()
    await setup.proxy.restore()
    again = open_store(store_url)
    await again.open()
    try:
        later = ClaimQueue(again, {8996: setup.escrow}, clock=setup.clock)
        setup.clock.now += Backoff().delay(0)
        assert (await later.retry_due()).final == {"job-store": CLAIMED}
        assert (await later.retry_due()).final == {}
    finally:
        await again.close()
    [claimed] = escrow_events(harness, "Claimed")
    assert claimed["args"]["amount"] == 2 * PER_MINUTE
