"""Paid compute v2 through the real Escrow contract, as ocean.js 8.6.2 drives it over
HTTP: the dev chain (anvil, the Escrow the test chain deploys), the local sandboxed
engine (bubblewrap), the app's own background settlement and claim queue."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.node import oceanjs8
from tests.api.node.test_compute import raw, wait_v2
from tests.api.test_compute import publish_dataset
from tests.chain_fixtures import ChainHarness, wait_for_ddo
from tests.escrow_helpers import (
    authorize,
    deposit,
    escrow_events,
    fund,
    ocean_balance,
    opc_fee,
    payer_funds,
)
from tests.helpers import PROVIDER_ADDRESS
from tidegate.dev.ocean_txs import ONE_TOKEN

#: priceMin 2 OCEAN per minute for the whole job (its 2 CPUs), at most 300 s.
PAID_ENV = ('[{"id": "paid", "chainId": 8996, "priceMin": 2, "cpu": 2, '
            '"maxJobDuration": 300}]')
SLEEP = "import time\ntime.sleep(1)\nprint('paid', flush=True)\n"


async def settled(harness: ChainHarness, limit: float = 60) -> tuple[int, int]:
    """The payer's (available, locked) once nothing is locked any more (the app's
    settlement task runs every few seconds)."""
    deadline = time.monotonic() + limit
    while (funds := payer_funds(harness))[1] != 0:
        assert time.monotonic() < deadline, f"the lock was never settled: {funds}"
        await asyncio.sleep(0.5)
    return funds


async def test_a_paid_job_locks_at_start_and_claims_the_minutes_it_used(
        harness: ChainHarness, chain_settings: Any) -> None:
    from tests.conftest import start_app

    fund(harness, 100 * ONE_TOKEN)
    provider_before = ocean_balance(harness, PROVIDER_ADDRESS)
    async for client in start_app(chain_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=PAID_ENV)):
        env = (await oceanjs8.compute_environments(client)).json()[0]
        token = env["fees"]["8996"][0]["feeToken"]
        assert token.lower() == harness.addresses["Ocean"].lower()
        # No free compute in a priced environment.
        r = await oceanjs8.free_compute_start(client, "paid", [], raw("print(1)\n"))
        assert (r.status_code, r.json()["code"]) == (400, "free_compute_unavailable")
        r = await oceanjs8.compute_start(client, "paid", [], raw(SLEEP), token=token,
                                         max_job_duration=120)
        assert r.status_code == 200, r.text
        job = r.json()[0]
        assert job["isFree"] is False and job["maxJobDuration"] == 120
        # Locked before the job was queued: 2 OCEAN x 2 minutes.
        [locked] = escrow_events(harness, "Lock")
        lock_tx = locked["transactionHash"].hex().removeprefix("0x")
        assert job["agreementId"].lower() == "0x" + lock_tx
        assert locked["args"]["amount"] == 4 * ONE_TOKEN
        done = await wait_v2(client, job["jobId"])
        assert done["status"] == 70, done
        # The job ran about a second: one minute is claimed, the rest returns.
        assert await settled(harness) == (98 * ONE_TOKEN, 0)
        [claimed] = escrow_events(harness, "Claimed")
        assert claimed["args"]["amount"] == 2 * ONE_TOKEN
        assert ocean_balance(harness, PROVIDER_ADDRESS) - provider_before == (
            2 * ONE_TOKEN - opc_fee(harness, 2 * ONE_TOKEN))


async def test_initialize_quotes_what_the_start_then_locks(
        harness: ChainHarness, chain_settings: Any) -> None:
    """initializeCompute's ``payment`` object, then a deposit and authorization of exactly
    what it says (as ocean.js 8's EscrowContract does from it): the start is paid."""
    from tests.conftest import start_app

    async for client in start_app(chain_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=PAID_ENV)):
        token = harness.addresses["Ocean"]
        dataset = publish_dataset(harness, allowRawAlgorithm=True)
        await wait_for_ddo(client, dataset.did)
        own_file = {"fileObject": {"type": "url", "url": harness.origin + "/data.csv",
                                   "method": "GET"}}
        r = await oceanjs8.initialize_compute(
            client, "paid", [own_file, {"documentId": dataset.did, "serviceId": "0"}],
            raw(SLEEP), token=token, max_job_duration=120)
        assert r.status_code == 200, r.text
        quote = r.json()
        payment = quote["payment"]
        assert (payment["escrowAddress"].lower(), payment["token"].lower()) == (
            harness.addresses["Escrow"].lower(), token.lower())
        assert {k: v for k, v in payment.items() if k not in ("escrowAddress", "token")} == {
            "payee": PROVIDER_ADDRESS, "chainId": 8996, "amount": str(4 * ONE_TOKEN),
            "minLockSeconds": 120 + 3600}  # 2 OCEAN x 2 minutes, in wei; run + claim time
        assert quote["algorithm"] == {"validOrder": False}  # raw code: nothing to order
        own, published = quote["datasets"]
        assert own == {"validOrder": False}
        assert published["validOrder"] is False
        assert published["datatoken"].lower() == dataset.datatoken_address.lower()
        assert published["providerFee"]["providerFeeAmount"] == "0"  # compute: escrow
        # Beyond the environment's maximum: capped, as Ocean Node does.
        r = await oceanjs8.initialize_compute(client, "paid", [], raw(SLEEP), token=token,
                                              max_job_duration=10_000)
        assert r.json()["payment"]["amount"] == str(10 * ONE_TOKEN)  # 300 s: 5 minutes
        r = await oceanjs8.initialize_compute(client, "paid", [], raw(SLEEP),
                                              token=harness.addresses["MockDAI"])
        assert (r.status_code, r.json()["code"]) == (400, "escrow_token_refused")
        # The consumer deposits and authorizes exactly the quote; the start is paid.
        fund(harness, int(payment["amount"]), max_locked=int(payment["amount"]),
             max_seconds=payment["minLockSeconds"], max_counts=1)
        r = await oceanjs8.compute_start(client, "paid", [own_file], raw(SLEEP), token=token,
                                         max_job_duration=120)
        assert r.status_code == 200, r.text
        assert payer_funds(harness) == (0, 4 * ONE_TOKEN)
        assert (await wait_v2(client, r.json()[0]["jobId"]))["status"] == 70
        assert await settled(harness) == (2 * ONE_TOKEN, 0)


async def test_a_paid_job_that_never_ran_is_released_whole(
        harness: ChainHarness, chain_settings: Any) -> None:
    from tests.conftest import start_app

    fund(harness, 100 * ONE_TOKEN)
    async for client in start_app(chain_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=PAID_ENV)):
        token = harness.addresses["Ocean"]
        missing = [{"fileObject": {"type": "url", "url": harness.origin + "/no-such-file",
                                   "method": "GET"}}]
        r = await oceanjs8.compute_start(client, "paid", missing, raw(SLEEP), token=token,
                                         max_job_duration=120)
        assert r.status_code == 200, r.text
        job_id = r.json()[0]["jobId"]
        assert payer_funds(harness)[1] == 4 * ONE_TOKEN
        done = await wait_v2(client, job_id)
        assert done["status"] == 31, done  # its input could not be fetched: never ran
        assert await settled(harness) == (100 * ONE_TOKEN, 0)
        # A claim of 0: the whole lock returns at once (not at its expiry).
        assert [e["args"]["amount"] for e in escrow_events(harness, "Claimed")] == [0]


async def test_a_paid_start_that_cannot_be_paid_is_refused_before_it_runs(
        harness: ChainHarness, chain_settings: Any) -> None:
    from tests.conftest import start_app

    async for client in start_app(chain_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=PAID_ENV)):
        token = harness.addresses["Ocean"]
        # No deposit (the job costs 2 OCEAN for its minute).
        r = await oceanjs8.compute_start(client, "paid", [], raw(SLEEP), token=token)
        assert (r.status_code, r.json()["code"]) == (400, "escrow_insufficient_funds")
        # A deposit, but no authorization of this provider.
        deposit(harness, 10 * ONE_TOKEN)
        r = await oceanjs8.compute_start(client, "paid", [], raw(SLEEP), token=token)
        assert (r.status_code, r.json()["code"]) == (400, "escrow_not_authorized")
        # Authorized, but for less than the job's cost.
        authorize(harness, ONE_TOKEN, 3600, 10)
        r = await oceanjs8.compute_start(client, "paid", [], raw(SLEEP), token=token)
        assert (r.status_code, r.json()["code"]) == (400, "escrow_limit_exceeded")
        # A token the environment does not take.
        r = await oceanjs8.compute_start(client, "paid", [], raw(SLEEP),
                                         token=harness.addresses["MockDAI"])
        assert (r.status_code, r.json()["code"]) == (400, "escrow_token_refused")
        # Nothing ran, nothing was locked.
        assert (await oceanjs8.compute_status(client)).json() == []
        assert payer_funds(harness) == (10 * ONE_TOKEN, 0)
        assert escrow_events(harness, "Lock") == []


async def test_without_an_escrow_contract_paid_compute_is_unavailable(
        harness: ChainHarness, chain_settings: Any, tmp_path: Path) -> None:
    from tests.conftest import start_app

    addresses = json.loads(harness.address_file.read_text())
    for network in addresses.values():
        network.pop("Escrow", None)
    no_escrow = tmp_path / "no-escrow.json"
    no_escrow.write_text(json.dumps(addresses))
    async for client in start_app(chain_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=PAID_ENV,
                                                 ADDRESS_FILE=str(no_escrow))):
        r = await oceanjs8.initialize_compute(client, "paid", [], raw(SLEEP),
                                              token=harness.addresses["Ocean"])
        assert (r.status_code, r.json()["code"]) == (402, "escrow_unavailable")
        r = await oceanjs8.compute_start(client, "paid", [], raw(SLEEP),
                                         token=harness.addresses["Ocean"])
        assert (r.status_code, r.json()["code"]) == (402, "escrow_unavailable")
        transport = client._transport
        assert isinstance(transport, httpx.ASGITransport)
        assert transport.app.state.services.compute_payments is None  # type: ignore[attr-defined]


async def test_a_lock_is_released_when_the_engine_then_refuses_the_job(
        harness: ChainHarness, chain_settings: Any) -> None:
    """The seam's cancel path: locked, then the engine refuses (no disk room): the whole
    lock returns to the payer at once, and nothing runs."""
    from tests.conftest import start_app

    fund(harness, 100 * ONE_TOKEN)
    settings = chain_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=PAID_ENV,
                              TIDEGATE_COMPUTE_MIN_FREE_MB=str(10**12))
    async for client in start_app(settings):
        r = await oceanjs8.compute_start(client, "paid", [], raw(SLEEP),
                                         token=harness.addresses["Ocean"],
                                         max_job_duration=120)
        assert (r.status_code, r.json()["code"]) == (503, "insufficient_disk"), r.text
        [locked] = escrow_events(harness, "Lock")
        assert locked["args"]["amount"] == 4 * ONE_TOKEN
        assert [e["args"]["amount"] for e in escrow_events(harness, "Claimed")] == [0]
        assert payer_funds(harness) == (100 * ONE_TOKEN, 0)
        assert (await oceanjs8.compute_status(client)).json() == []


async def test_a_paid_job_that_ended_while_no_settlement_ran_is_settled_at_the_next_start(
        harness: ChainHarness, chain_settings: Any) -> None:
    """The app stops while a paid job runs (the job is failed as the engine closes, after
    the settlement task stopped); the next process settles it from the stored record."""
    from tests.conftest import start_app

    fund(harness, 100 * ONE_TOKEN)
    ticks = "import time\nfor i in range(600):\n    print('tick', i, flush=True)\n" \
            "    time.sleep(0.1)\n"
    settings = chain_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=PAID_ENV)
    async for client in start_app(settings):
        r = await oceanjs8.compute_start(client, "paid", [], raw(ticks),
                                         token=harness.addresses["Ocean"],
                                         max_job_duration=120)
        assert r.status_code == 200, r.text
        job_id = r.json()[0]["jobId"]
        deadline = time.monotonic() + 60
        while (await oceanjs8.compute_status(client, job_id)).json()[0]["status"] != 40:
            assert time.monotonic() < deadline, "the job never ran"
            await asyncio.sleep(0.2)
    assert payer_funds(harness) == (96 * ONE_TOKEN, 4 * ONE_TOKEN)  # still locked
    async for client in start_app(settings):
        record = (await oceanjs8.compute_status(client, job_id)).json()[0]
        assert record["status"] in (31, 32, 70), record
        assert await settled(harness) == (98 * ONE_TOKEN, 0)  # it ran: one minute


#: One job at a time, so a second start waits in the queue.
ONE_SLOT_ENV = ('[{"id": "paid", "chainId": 8996, "priceMin": 2, "cpu": 2, '
                '"maxJobDuration": 300, "maxJobs": 1}]')


async def test_queue_max_wait_lengthens_the_lock_and_ends_a_job_that_waited_longer(
        harness: ChainHarness, chain_settings: Any) -> None:
    """``queueMaxWaitTime``: the quote's ``minLockSeconds`` and the lock cover the wait;
    a job still without a slot after it ends unrun (never charged: released whole)
    while the job holding the slot is charged as usual."""
    from tests.conftest import start_app

    fund(harness, 100 * ONE_TOKEN)
    async for client in start_app(chain_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=ONE_SLOT_ENV)):
        token = harness.addresses["Ocean"]
        r = await oceanjs8.initialize_compute(client, "paid", [], raw(SLEEP), token=token,
                                              max_job_duration=120, queue_max_wait=30)
        assert r.status_code == 200, r.text
        assert r.json()["payment"]["minLockSeconds"] == 120 + 30 + 3600
        long_job = "import time\nprint('holding', flush=True)\ntime.sleep(12)\n"
        r = await oceanjs8.compute_start(client, "paid", [], raw(long_job), token=token,
                                         max_job_duration=120, queue_max_wait=1000)
        assert r.status_code == 200, r.text
        holder = r.json()[0]["jobId"]
        deadline = time.monotonic() + 30
        while (await oceanjs8.compute_status(client, holder)).json()[0]["status"] < 40:
            assert time.monotonic() < deadline, "the first job never ran"
            await asyncio.sleep(0.2)
        r = await oceanjs8.compute_start(client, "paid", [], raw(SLEEP), token=token,
                                         max_job_duration=120, queue_max_wait=1)
        assert r.status_code == 200, r.text
        waiter = r.json()[0]
        assert waiter["queueMaxWaitTime"] == 1
        # Each lock lasts its job's run, its queue wait and the claim time: the holder's
        # (a 1000 s wait allowed) 999 s longer than the waiter's, less the seconds
        # between the two locks.
        holder_lock, waiter_lock = escrow_events(harness, "Lock")
        assert 980 <= holder_lock["args"]["expiry"] - waiter_lock["args"]["expiry"] <= 999
        expired = await wait_v2(client, waiter["jobId"])
        assert (expired["status"], expired["statusText"]) == (70, "Job expired in the queue")
        assert expired["detail"] == ("The job waited longer than its queueMaxWaitTime (1 s) "
                                     "for a free slot and was not run.")
        # The holder is still running: the waiter ended at its deadline, not after it.
        assert (await oceanjs8.compute_status(client, holder)).json()[0]["status"] == 40
        assert (await wait_v2(client, holder))["status"] == 70
        assert await settled(harness) == (98 * ONE_TOKEN, 0)  # only the holder's minute
        assert sorted(e["args"]["amount"] for e in escrow_events(harness, "Claimed")) == [
            0, 2 * ONE_TOKEN]
