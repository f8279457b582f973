"""The compute v2 start's payments seam over the real Escrow contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from tests.chain_fixtures import ChainHarness
from tests.escrow_helpers import escrow_events, fund, payer_funds
from tidegate.chain.clients import ChainConfig
from tidegate.compute.environments import Environment
from tidegate.dev.ocean_txs import ONE_TOKEN
from tidegate.fees import compute_cost
from tidegate.fees.claim_queue import CLAIMED
from tidegate.fees.compute_cost import ResourceRequest
from tidegate.fees.compute_payments import EscrowComputePayments, environment_pricing
from tidegate.fees.escrow_payments import PaymentRefusedError, build_escrow_payments
from tidegate.stores.sqlite import SqliteStore

pytestmark = pytest.mark.chain


@dataclass(frozen=True)
class Amount:
    id: str
    amount: float


@dataclass(frozen=True)
class PaidJobStandIn:
    """The attributes the compute v2 adapter's ``PaidJob`` (branch c2dv2) carries."""

    job_id: str
    consumer: str
    environment: Environment
    chain_id: int
    token: str
    resources: tuple[Amount, ...]
    seconds: int
    queue_seconds: int = 0


@pytest.fixture
async def seam(chain_config: ChainConfig, tmp_path: Path) -> AsyncIterator[EscrowComputePayments]:
    store = SqliteStore(tmp_path / "store.db")
    await store.open()
    try:
        yield EscrowComputePayments(build_escrow_payments([chain_config], store))
    finally:
        await store.close()


def environment(harness: ChainHarness, price: str = "1.5", cpus: int = 3) -> Environment:
    return Environment(id="paid", chain_id=8996, consumer_address="0x" + "ab" * 20,
                       fee_token=harness.addresses["Ocean"], price_min=Decimal(price),
                       cpu_number=cpus, ram_gb=2, disk_gb=4)


def job(harness: ChainHarness, env: Environment, job_id: str = "v2-job",
        token: str | None = None) -> PaidJobStandIn:
    return PaidJobStandIn(job_id, harness.consumer.address, env, 8996,
                          token or harness.addresses["Ocean"],
                          (Amount("cpu", env.cpu_number), Amount("ram", 2.0),
                           Amount("disk", 4.0), Amount("gpu", 0.0)), 300)


def test_an_environments_price_per_minute_is_carried_by_its_cpus() -> None:
    env = Environment(id="e", chain_id=1, consumer_address="0x" + "ab" * 20,
                      fee_token="0x" + "11" * 20, price_min=Decimal("1"), cpu_number=3)
    pricing = environment_pricing(env)
    assert pricing.prices == {"cpu": pricing.prices["cpu"]}  # every other resource is free
    cost = compute_cost.cost(pricing, [ResourceRequest("cpu", Decimal(3)),
                                       ResourceRequest("ram", Decimal(8))], 61)
    # A third of 1 per CPU is not exact in decimals, but 3 CPUs x 2 minutes are 2 tokens.
    assert compute_cost.to_base_units(cost, 18) == 2 * 10**18


async def test_a_v2_job_is_locked_at_start_and_settled_by_its_id(
        harness: ChainHarness, seam: EscrowComputePayments) -> None:
    fund(harness, 100 * ONE_TOKEN)
    env = environment(harness)
    lock_tx = await seam.lock(job(harness, env))
    assert lock_tx.startswith("0x") and len(lock_tx) == 66
    # priceMin 1.5 per minute, 300 s: 7.5 OCEAN locked.
    assert payer_funds(harness) == (100 * ONE_TOKEN - 75 * ONE_TOKEN // 10, 75 * ONE_TOKEN // 10)
    row = await seam.settle("v2-job", used_seconds=119)  # 2 minutes: 3 OCEAN
    assert row is not None and row.state == CLAIMED
    assert payer_funds(harness) == (97 * ONE_TOKEN, 0)
    [claimed] = escrow_events(harness, "Claimed")
    assert claimed["args"]["amount"] == 3 * ONE_TOKEN
    assert await seam.settle("a-free-job", 10) is None  # no lock: nothing to settle


async def test_a_v2_job_that_never_ran_is_released_by_its_id(
        harness: ChainHarness, seam: EscrowComputePayments) -> None:
    fund(harness, 100 * ONE_TOKEN)
    await seam.lock(job(harness, environment(harness), "never-ran"))
    row = await seam.release("never-ran")
    assert row is not None and row.state == CLAIMED
    assert payer_funds(harness) == (100 * ONE_TOKEN, 0)


async def test_a_token_the_environment_does_not_take_is_refused(
        harness: ChainHarness, seam: EscrowComputePayments) -> None:
    fund(harness, 100 * ONE_TOKEN)
    with pytest.raises(PaymentRefusedError) as info:
        await seam.lock(job(harness, environment(harness), token=harness.addresses["MockDAI"]))
    assert info.value.code == "escrow_token_refused" and info.value.status == 400
    with pytest.raises(PaymentRefusedError) as info:
        await seam.lock(job(harness, environment(harness, price="1000")))
    assert info.value.code == "escrow_insufficient_funds"
    assert payer_funds(harness) == (100 * ONE_TOKEN, 0)
