"""The settlement sweep over the unclaimed escrow locks, with the real Escrow contract,
the real payments object and store, and the operator-service engine in front of the
stateful recorded-contract *fake* operator (``tests/operator_fake.py``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.chain_fixtures import ChainHarness
from tests.escrow_helpers import escrow_events, fund, payer_funds
from tests.helpers import PROVIDER_KEY
from tests.operator_fake import FakeStatefulOperator
from tests.unit.compute.conftest import PYTHON
from tidegate.chain.clients import ChainConfig
from tidegate.commands.compute.settle import PaidJobSettler
from tidegate.compute.engines.base import JobAlgorithm, JobSpec
from tidegate.compute.engines.operator_service import OperatorServiceEngine
from tidegate.compute.environments import Environment
from tidegate.dev.ocean_txs import ONE_TOKEN
from tidegate.fees.compute_cost import ResourceRequest
from tidegate.fees.compute_payments import EscrowComputePayments, environment_pricing
from tidegate.fees.escrow_payments import build_escrow_payments
from tidegate.stores.sqlite import SqliteStore

pytestmark = pytest.mark.chain

ENV = {"id": "paid-k8s", "cpuNumber": 1, "maxJobs": 5, "maxJobDuration": 300,
       "priceMin": 1}


class Parts:
    def __init__(self, store: SqliteStore, engine: OperatorServiceEngine,
                 payments: EscrowComputePayments) -> None:
        self.store, self.engine, self.payments = store, engine, payments
        self.settler = PaidJobSettler(engine, payments, store)


@pytest.fixture
def operator() -> Iterator[FakeStatefulOperator]:
    with FakeStatefulOperator([ENV]).running() as server:
        yield server


@pytest.fixture
async def parts(chain_config: ChainConfig, tmp_path: Path,
                operator: FakeStatefulOperator) -> AsyncIterator[Parts]:
    store = SqliteStore(tmp_path / "store.db")
    await store.open()
    try:
        async with httpx.AsyncClient() as http:
            engine = OperatorServiceEngine(http, operator.url, PROVIDER_KEY, [8996],
                                           store=store, retries=1)
            yield Parts(store, engine,
                        EscrowComputePayments(build_escrow_payments([chain_config], store)))
    finally:
        await store.close()


async def paid_job(harness: ChainHarness, parts: Parts, job_id: str) -> str:
    """Lock a 5-minute job of 1 OCEAN a minute, start it; the operator's job id."""
    env = Environment(id="paid-k8s", chain_id=8996, consumer_address="0x" + "ab" * 20,
                      fee_token=harness.addresses["Ocean"], price_min=Decimal(1),
                      max_job_duration=300)
    await parts.payments.payments.lock_for_job(
        job_id, harness.consumer.address, environment_pricing(env),
        [ResourceRequest("cpu", Decimal(1))], 300)
    spec = JobSpec(job_id, harness.consumer.address, env, 8996, "", [],
                   JobAlgorithm(container=PYTHON, rawcode="print(1)"), max_duration=300,
                   protocol="node", free=False)
    record = await parts.engine.start(spec)
    return record.job_id


async def test_the_sweep_settles_only_ended_locked_jobs_and_retries_recorded_contract_fake(
        harness: ChainHarness, parts: Parts, operator: FakeStatefulOperator) -> None:
    fund(harness, 100 * ONE_TOKEN)
    ran = await paid_job(harness, parts, "lock-ran")
    queued = await paid_job(harness, parts, "lock-queued")
    assert sorted(r.job_id for r in await parts.store.unclaimed_escrow_locks()) == [
        "lock-queued", "lock-ran"]
    assert await parts.settler.settle_ended() == []  # nothing ended
    now = time.time()
    operator.move(ran, 70, "Job completed", algoStartTimestamp=f"{now - 61:.3f}",
                  algoStopTimestamp=f"{now:.3f}", dateFinished=f"{now:.3f}")
    # The operator is down for this pass: nothing is settled, the next pass does it.
    operator.failures.extend([503, 503])
    assert await parts.settler.settle_ended() == []
    assert await parts.settler.settle_ended() == ["lock-ran"]
    assert [e["args"]["amount"] for e in escrow_events(harness, "Claimed")] == [
        2 * ONE_TOKEN]  # 61 s: two minutes
    # Only the queued job's lock is still swept; once settled it leaves the sweep.
    assert [r.job_id for r in await parts.store.unclaimed_escrow_locks()] == ["lock-queued"]
    assert await parts.settler.settle_ended() == []
    operator.move(queued, 32, "Algorithm provisioning failed", dateFinished=f"{now:.3f}")
    assert await parts.settler.settle_ended() == ["lock-queued"]
    assert await parts.store.unclaimed_escrow_locks() == []
    assert payer_funds(harness) == (98 * ONE_TOKEN, 0)
    assert [e["args"]["amount"] for e in escrow_events(harness, "Claimed")] == [
        2 * ONE_TOKEN, 0]


async def test_a_paid_job_deleted_before_its_settlement_is_still_charged_recorded_contract_fake(
        harness: ChainHarness, parts: Parts, operator: FakeStatefulOperator) -> None:
    """The operator forgets a deleted job; its last state, kept at the delete, is what
    the sweep settles (the consumer cannot delete a finished job to avoid paying)."""
    fund(harness, 100 * ONE_TOKEN)
    op_id = await paid_job(harness, parts, "lock-deleted")
    now = time.time()
    operator.move(op_id, 70, "Job completed", algoStartTimestamp=f"{now - 100:.3f}",
                  algoStopTimestamp=f"{now:.3f}", dateFinished=f"{now:.3f}")
    await parts.engine.delete(harness.consumer.address, op_id, None)
    assert op_id not in operator.jobs
    assert await parts.settler.settle_ended() == ["lock-deleted"]
    assert [e["args"]["amount"] for e in escrow_events(harness, "Claimed")] == [
        2 * ONE_TOKEN]  # 100 s: two minutes
    assert payer_funds(harness) == (98 * ONE_TOKEN, 0)
