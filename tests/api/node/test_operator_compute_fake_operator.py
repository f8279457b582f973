"""Compute v2 (Ocean Node's protocol) on the operator-service engine, as ocean.js 8.6.2
drives it over HTTP: the dev chain, the real Escrow contract, the app's own settlement
and claim queue -- and a stateful recorded-contract *fake* operator-service
(``tests/operator_fake.py``; the real one needs Kubernetes), whose jobs the tests move
to running and finished as the cluster would."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.api.node import oceanjs8
from tests.api.node.test_compute import raw
from tests.api.node.test_paid_compute import settled
from tests.chain_fixtures import ChainHarness
from tests.escrow_helpers import escrow_events, fund, ocean_balance, opc_fee, payer_funds
from tests.helpers import CONSUMER_ADDRESS, PROVIDER_ADDRESS
from tests.operator_fake import FakeStatefulOperator
from tidegate.commands.compute.settle import PaidJobSettler
from tidegate.dev.ocean_txs import ONE_TOKEN

#: The operator's environment objects: 2 OCEAN a minute, at most 300 s; and a free one
#: (priceMin 0) that runs one job per consumer at a time (maxJobs 1).
PAID = {"id": "paid-k8s", "consumerAddress": "0x" + "44" * 20, "cpuNumber": 2,
        "ramGB": 1, "diskGB": 1, "maxJobs": 5, "maxJobDuration": 300, "priceMin": 2,
        "storageExpiry": 600, "desc": "paid", "currentJobs": 0, "lastSeen": "1.0"}
FREE = {**PAID, "id": "free-k8s", "priceMin": 0, "maxJobs": 1, "desc": "free"}
CODE = raw("print('hi')\n")


@pytest.fixture
def operator() -> Iterator[FakeStatefulOperator]:
    with FakeStatefulOperator([PAID, FREE]).running() as server:
        yield server


@pytest.fixture
async def client(operator: FakeStatefulOperator,
                 chain_settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    from tests.conftest import start_app

    async for c in start_app(chain_settings(OPERATOR_SERVICE_URL=operator.url)):
        yield c


def settler(client: httpx.AsyncClient) -> PaidJobSettler:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    found = transport.app.state.paid_job_settler  # type: ignore[attr-defined]
    assert isinstance(found, PaidJobSettler)
    return found


async def paid_start(client: httpx.AsyncClient, harness: ChainHarness) -> dict[str, Any]:
    r = await oceanjs8.compute_start(client, "paid-k8s", [], CODE,
                                     token=harness.addresses["Ocean"], max_job_duration=120)
    assert r.status_code == 200, r.text
    return dict(r.json()[0])


async def status(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    r = await oceanjs8.compute_status(client, job_id)
    assert r.status_code == 200, r.text
    [job] = r.json()
    return dict(job)


async def test_paid_job_claims_the_operators_run_minutes_recorded_contract_fake(
        harness: ChainHarness, client: httpx.AsyncClient,
        operator: FakeStatefulOperator) -> None:
    fund(harness, 100 * ONE_TOKEN)
    provider_before = ocean_balance(harness, PROVIDER_ADDRESS)
    env = next(e for e in (await oceanjs8.compute_environments(client)).json()
               if e["id"] == "paid-k8s")
    assert env["fees"]["8996"][0]["feeToken"].lower() == harness.addresses["Ocean"].lower()
    job = await paid_start(client, harness)
    job_id = job["jobId"]
    assert job_id in operator.jobs  # the operator's id is the one clients see
    assert (job["isFree"], job["maxJobDuration"], job["environment"]) == (
        False, 120, "paid-k8s")
    [posted] = [r for r in operator.received if r["method"] == "POST"]
    assert posted["json"]["owner"] == CONSUMER_ADDRESS
    # Locked before the operator was asked: 2 OCEAN x 2 minutes.
    [locked] = escrow_events(harness, "Lock")
    assert locked["args"]["amount"] == 4 * ONE_TOKEN
    assert job["agreementId"].lower() == "0x" + locked["transactionHash"].hex().removeprefix(
        "0x")
    # Queued, then running: nothing is settled.
    assert await settler(client).settle_ended() == []
    started = time.time()
    operator.move(job_id, 40, "Running algorithm", algoStartTimestamp=f"{started:.3f}")
    running = await status(client, job_id)
    assert (running["status"], running["isFree"], running["maxJobDuration"]) == (
        40, False, 120)
    assert running["resources"] and {r["id"] for r in running["resources"]} >= {"cpu"}
    assert await settler(client).settle_ended() == []
    assert payer_funds(harness) == (96 * ONE_TOKEN, 4 * ONE_TOKEN)
    # Finished after 30 s of the algorithm's run (250 s after it was created: the
    # provisioning time is not charged when the operator sends the run's timestamps).
    operator.move(job_id, 70, "Job completed", algoStopTimestamp=f"{started + 30:.3f}",
                  dateCreated=f"{started - 220:.3f}", dateFinished=f"{started + 31:.3f}",
                  results=[("out.csv", b"a,b\n1,2\n")])
    done = await status(client, job_id)
    assert (done["status"], done["statusText"]) == (70, "Job finished")
    assert [r["filename"] for r in done["results"]] == ["out.csv"]
    assert len(await settler(client).settle_ended()) == 1
    assert await settler(client).settle_ended() == []  # once
    assert await settled(harness) == (98 * ONE_TOKEN, 0)  # one minute claimed
    [claimed] = escrow_events(harness, "Claimed")
    assert claimed["args"]["amount"] == 2 * ONE_TOKEN
    assert ocean_balance(harness, PROVIDER_ADDRESS) - provider_before == (
        2 * ONE_TOKEN - opc_fee(harness, 2 * ONE_TOKEN))
    # The result through the node route, from the operator.
    result = await client.get(await oceanjs8.compute_result_url(client, job_id, 0))
    assert (result.status_code, result.content) == (200, b"a,b\n1,2\n")


async def test_without_run_timestamps_charged_from_creation_recorded_contract_fake(
        harness: ChainHarness, chain_settings: Any) -> None:
    """An operator that sends no ``algoStartTimestamp``: ``dateCreated`` ->
    ``dateFinished`` (150 s) is charged, clamped to the job's maximum (120 s)."""
    from tests.conftest import start_app

    fund(harness, 100 * ONE_TOKEN)
    with FakeStatefulOperator([PAID], algo_timestamps=False).running() as operator:
        async for client in start_app(chain_settings(OPERATOR_SERVICE_URL=operator.url)):
            job_id = (await paid_start(client, harness))["jobId"]
            now = time.time()
            operator.move(job_id, 70, "Job completed", dateCreated=f"{now - 150:.3f}",
                          dateFinished=f"{now:.3f}")
            assert len(await settler(client).settle_ended()) == 1
            assert await settled(harness) == (96 * ONE_TOKEN, 0)
            assert [e["args"]["amount"] for e in escrow_events(harness, "Claimed")] == [
                4 * ONE_TOKEN]


async def test_provisioning_failure_releases_the_lock_recorded_contract_fake(
        harness: ChainHarness, client: httpx.AsyncClient,
        operator: FakeStatefulOperator) -> None:
    fund(harness, 100 * ONE_TOKEN)
    job_id = (await paid_start(client, harness))["jobId"]
    now = time.time()
    # Even with a creation long before: a provisioning failure never ran the algorithm.
    operator.move(job_id, 31, "Data provisioning failed", dateCreated=f"{now - 200:.3f}",
                  dateFinished=f"{now:.3f}")
    assert (await status(client, job_id))["status"] == 31
    assert len(await settler(client).settle_ended()) == 1
    assert await settled(harness) == (100 * ONE_TOKEN, 0)
    assert [e["args"]["amount"] for e in escrow_events(harness, "Claimed")] == [0]


async def test_paid_job_stopped_before_it_ran_is_released_recorded_contract_fake(
        harness: ChainHarness, client: httpx.AsyncClient,
        operator: FakeStatefulOperator) -> None:
    fund(harness, 100 * ONE_TOKEN)
    job_id = (await paid_start(client, harness))["jobId"]
    stopped = await oceanjs8.compute_stop(client, job_id)
    assert stopped.status_code == 200, stopped.text
    [job] = stopped.json()
    assert (job["jobId"], job["stopRequested"], job["isFree"]) == (job_id, True, False)
    assert [r["method"] for r in operator.received if r["path"] == "compute"][-1] == "PUT"
    done = await status(client, job_id)
    assert (done["status"], done["statusText"]) == (70, "Job stopped")
    assert len(await settler(client).settle_ended()) == 1
    assert await settled(harness) == (100 * ONE_TOKEN, 0)
    assert [e["args"]["amount"] for e in escrow_events(harness, "Claimed")] == [0]


async def test_forgotten_job_released_after_its_lock_expires_recorded_contract_fake(
        harness: ChainHarness, client: httpx.AsyncClient,
        operator: FakeStatefulOperator) -> None:
    fund(harness, 100 * ONE_TOKEN)
    job_id = (await paid_start(client, harness))["jobId"]
    with operator.lock:
        operator.jobs.pop(job_id)
    app_settler = settler(client)
    assert await app_settler.settle_ended() == []  # may be a start in progress: kept
    assert payer_funds(harness) == (96 * ONE_TOKEN, 4 * ONE_TOKEN)
    later = PaidJobSettler(app_settler.engine, app_settler.payments, app_settler.store,
                           clock=lambda: time.time() + 120 + 3600 + 1)  # past lockSeconds
    assert len(await later.settle_ended()) == 1
    assert await later.settle_ended() == []  # its claim is queued: no longer swept
    # The lock had not expired on chain yet: the release's claim of 0 returns it all.
    assert await settled(harness) == (100 * ONE_TOKEN, 0)


async def test_free_compute_and_its_limit_recorded_contract_fake(
        harness: ChainHarness, client: httpx.AsyncClient,
        operator: FakeStatefulOperator) -> None:
    r = await oceanjs8.free_compute_start(client, "free-k8s", [], CODE)
    assert r.status_code == 200, r.text
    [job] = r.json()
    assert (job["isFree"], job["environment"]) == (True, "free-k8s")
    assert (await status(client, job["jobId"]))["isFree"] is True
    # maxJobs 1: a second unfinished free job of this consumer is refused.
    again = await oceanjs8.free_compute_start(client, "free-k8s", [], CODE)
    assert (again.status_code, again.json()["code"]) == (400, "too_many_free_jobs")
    assert len([r for r in operator.received if r["method"] == "POST"]) == 1
    operator.move(job["jobId"], 70, "Job completed", algoStartTimestamp=f"{time.time():.3f}",
                  algoStopTimestamp=f"{time.time():.3f}", dateFinished=f"{time.time():.3f}")
    r = await oceanjs8.free_compute_start(client, "free-k8s", [], CODE)
    assert r.status_code == 200, r.text
    # Free jobs lock nothing and leave nothing to settle.
    assert escrow_events(harness, "Lock") == []
    assert await settler(client).settle_ended() == []
    # A paid start in the free environment is refused by its price (no fee).
    r = await oceanjs8.free_compute_start(client, "paid-k8s", [], CODE)
    assert (r.status_code, r.json()["code"]) == (400, "free_compute_unavailable")


async def test_streamable_logs_documented_error_recorded_contract_fake(
        client: httpx.AsyncClient, operator: FakeStatefulOperator) -> None:
    """The operator-service has no log stream: 404 ``job_not_running``, not a 500."""
    job_id = (await oceanjs8.free_compute_start(client, "free-k8s", [], CODE)).json()[0][
        "jobId"]
    operator.move(job_id, 40, "Running algorithm", algoStartTimestamp=f"{time.time():.3f}")
    r = await client.get(await oceanjs8.streamable_logs_url(client, job_id))
    assert (r.status_code, r.json()["code"]) == (404, "job_not_running")
