"""Compute v2 as ocean.js 8.6.2 drives it over HTTP (free compute, status, streamable
logs, results, stop), on the dev chain with the local sandboxed engine (bubblewrap),
beside the classic compute routes on the same paths."""

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.api.node import oceanjs8
from tests.api.server_helpers import serving
from tests.api.test_compute import PYTHON, environment, publish_dataset
from tests.chain_fixtures import ORIGIN_FILES, ChainHarness, wait_for_ddo
from tests.helpers import (
    CONSUMER_ADDRESS,
    OTHER_ADDRESS,
    OTHER_KEY,
    PROVIDER_ADDRESS,
)

COUNT = ("import os, pathlib\n"
         "data = pathlib.Path('/data/inputs/fileObject0/0').read_bytes()\n"
         "pathlib.Path('/data/outputs/result.txt').write_bytes(b'lines=%d' % data.count(b'\\n'))\n"
         "print('counted', flush=True)\n")
TICKS = ("import time\n"
         "for i in range(600):\n"
         "    print('tick', i, flush=True)\n"
         "    time.sleep(0.1)\n")


def raw(code: str) -> dict[str, Any]:
    return {"meta": {"rawcode": code, "container": PYTHON}}


async def v2_environment(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await oceanjs8.compute_environments(client)
    assert r.status_code == 200, r.text
    envs = r.json()
    assert isinstance(envs, list) and envs
    return dict(envs[0])


async def wait_v2(client: httpx.AsyncClient, job_id: str, limit: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        jobs = (await oceanjs8.compute_status(client, job_id)).json()
        if jobs and jobs[0]["status"] in (31, 32, 70):
            return dict(jobs[0])
        await asyncio.sleep(0.2)
    raise AssertionError("job did not finish")


async def test_one_path_two_shapes(chain_client: httpx.AsyncClient) -> None:
    # ocean.js 8 finds the path in GET / (which it asks with an Authorization header).
    _, path = await oceanjs8.endpoint(chain_client, "computeEnvironments")
    assert path == "/api/services/computeEnvironments?protocol=node"
    classic_root = (await chain_client.get("/", headers=oceanjs8.JSON)).json()
    assert classic_root["serviceEndpoints"]["computeEnvironments"] == [
        "GET", "/api/services/computeEnvironments"]
    assert classic_root["serviceEndpoints"]["freeCompute"] == [
        "POST", "/api/services/freeCompute"]
    env = await v2_environment(chain_client)
    assert env["consumerAddress"] == PROVIDER_ADDRESS
    resources = {r["id"]: r for r in env["resources"]}
    assert set(resources) == {"cpu", "ram", "disk", "gpu"}
    assert resources["cpu"] == {"id": "cpu", "type": "cpu", "kind": "quantity", "total": 2,
                                "min": 1, "max": 1, "inUse": 0}
    assert resources["gpu"]["total"] == 0
    fees = env["fees"]["8996"][0]
    assert {p["id"]: p["price"] for p in fees["prices"]} == {"cpu": 0, "ram": 0, "disk": 0,
                                                             "gpu": 0}
    assert env["free"]["maxJobDuration"] == env["maxJobDuration"] == 600
    assert env["free"]["maxJobs"] == 2 and env["free"]["maxJobsPerConsumer"] == 2
    assert (env["runningJobs"], env["queuedJobs"]) == (0, 0)
    # Ocean Node's chain filter; the classic answer on the same path, unchanged.
    other = await chain_client.get("/api/services/computeEnvironments?protocol=node&chainId=1")
    assert other.json() == []
    classic = await environment(chain_client)
    assert classic["id"] == env["id"] and classic["priceMin"] == 0


async def test_free_compute_on_a_file_object(harness: ChainHarness,
                                             chain_client: httpx.AsyncClient) -> None:
    env = await v2_environment(chain_client)
    datasets = [{"fileObject": {"type": "url", "url": harness.origin + "/data.csv",
                                "method": "GET"}}]
    r = await oceanjs8.free_compute_start(chain_client, env["id"], datasets, raw(COUNT))
    assert r.status_code == 200, r.text
    job = r.json()[0]
    assert job["owner"] == CONSUMER_ADDRESS and job["isFree"] is True
    assert job["maxJobDuration"] == 600 and job["environment"] == env["id"]
    assert {x["id"]: x["amount"] for x in job["resources"]} == {
        "cpu": 1, "ram": 1, "disk": 1, "gpu": 0}
    done = await wait_v2(chain_client, job["jobId"])
    assert (done["status"], done["statusText"]) == (70, "Job finished"), done
    kinds = {res["type"]: res for res in done["results"]}
    url = await oceanjs8.compute_result_url(chain_client, job["jobId"],
                                            kinds["output"]["index"])
    out = await chain_client.get(url)
    assert (out.status_code, out.content) == (200, b"lines=%d" % ORIGIN_FILES[
        "data.csv"].count(b"\n"))
    url = await oceanjs8.compute_result_url(chain_client, job["jobId"],
                                            kinds["algorithmLog"]["index"])
    assert b"counted" in (await chain_client.get(url)).content
    # The URL was signed once: a second use is a replay.
    again = await chain_client.get(url)
    assert (again.status_code, again.json()["code"]) == (401, "nonce_too_low")
    # Another address sees nothing, and cannot fetch the result.
    assert (await oceanjs8.compute_status(chain_client, job["jobId"], OTHER_ADDRESS)
            ).json() == []
    url = await oceanjs8.compute_result_url(chain_client, job["jobId"], 0, key=OTHER_KEY,
                                            address=OTHER_ADDRESS)
    assert (await chain_client.get(url)).status_code == 404


async def test_streamable_logs_and_stop(harness: ChainHarness, chain_settings: Any) -> None:
    # A real socket: the in-process transport buffers a streamed body to its end.
    async with serving(chain_settings()) as url, httpx.AsyncClient(base_url=url,
                                                                   timeout=30) as client:
        await _logs_and_stop(client)


async def _logs_and_stop(chain_client: httpx.AsyncClient) -> None:
    env = await v2_environment(chain_client)
    r = await oceanjs8.free_compute_start(chain_client, env["id"], [], raw(TICKS))
    assert r.status_code == 200, r.text
    job_id = r.json()[0]["jobId"]
    deadline = time.monotonic() + 30
    while (await oceanjs8.compute_status(chain_client, job_id)).json()[0]["status"] != 40:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert (await v2_environment(chain_client))["runningJobs"] == 1
    # Another owner: 404, the job is not theirs.
    url = await oceanjs8.streamable_logs_url(chain_client, job_id, key=OTHER_KEY,
                                             address=OTHER_ADDRESS)
    denied = await chain_client.get(url)
    assert (denied.status_code, denied.json()["code"]) == (404, "job_not_found")
    url = await oceanjs8.streamable_logs_url(chain_client, job_id)
    seen = b""
    async with chain_client.stream("GET", url) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/plain")
        async for chunk in stream.aiter_bytes():
            seen += chunk
            if seen.count(b"tick") >= 3:
                break
    assert seen.startswith(b"tick 0\n")
    stopped = await oceanjs8.compute_stop(chain_client, job_id)
    assert stopped.status_code == 200, stopped.text
    job = stopped.json()[0]
    assert job["jobId"] == job_id and job["stopRequested"] is True
    done = await wait_v2(chain_client, job_id)
    assert done["status"] == 70 and done["statusText"] == "Job stopped"
    assert [x["type"] for x in done["results"]] == ["algorithmLog"]
    url = await oceanjs8.streamable_logs_url(chain_client, job_id)
    over = await chain_client.get(url)
    assert (over.status_code, over.json()["code"]) == (404, "job_not_running")


async def test_free_job_limit_per_consumer(harness: ChainHarness,
                                           chain_settings: Any) -> None:
    from tests.conftest import start_app

    envs = ('[{"id": "free-one", "chainId": 8996, "maxJobs": 2, '
            '"freeJobsPerConsumer": 1, "maxJobDuration": 30}]')
    async for client in start_app(chain_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=envs)):
        env = await v2_environment(client)
        assert env["free"]["maxJobsPerConsumer"] == 1 and env["maxJobDuration"] == 30
        first = await oceanjs8.free_compute_start(client, "free-one", [], raw(TICKS))
        assert first.status_code == 200, first.text
        assert first.json()[0]["maxJobDuration"] == 30
        second = await oceanjs8.free_compute_start(client, "free-one", [], raw(TICKS))
        assert (second.status_code, second.json()["code"]) == (400, "too_many_free_jobs")
        other = await oceanjs8.free_compute_start(client, "free-one", [], raw(TICKS),
                                                  key=OTHER_KEY, address=OTHER_ADDRESS)
        assert other.status_code == 200, other.text
        for address, key, job in ((CONSUMER_ADDRESS, None, first), (OTHER_ADDRESS, OTHER_KEY,
                                                                     other)):
            kwargs = {"key": key, "address": address} if key else {}
            r = await oceanjs8.compute_stop(client, job.json()[0]["jobId"], **kwargs)
            assert r.status_code == 200, r.text


async def test_refusals(harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    env = await v2_environment(chain_client)
    # More than the environment gives a job.
    r = await oceanjs8.free_compute_start(chain_client, env["id"], [], raw(TICKS),
                                          resources=[{"id": "cpu", "amount": 4}])
    assert (r.status_code, r.json()["code"]) == (400, "resources_unavailable")
    # A published dataset needs its order on the free path too.
    dataset = publish_dataset(harness, allowRawAlgorithm=True)
    await wait_for_ddo(chain_client, dataset.did)
    r = await oceanjs8.free_compute_start(
        chain_client, env["id"], [{"documentId": dataset.did, "serviceId": "0"}], raw(TICKS))
    assert (r.status_code, r.json()["errors"]) == (400, {
        "datasets.0.transferTxId": "The datasets.0.transferTxId field is required."})
    # A replayed nonce.
    nonce = await oceanjs8.next_nonce(chain_client)
    ok = await oceanjs8.free_compute_start(chain_client, env["id"], [], raw("print(1)\n"),
                                           nonce=nonce)
    assert ok.status_code == 200, ok.text
    replay = await oceanjs8.free_compute_start(chain_client, env["id"], [],
                                               raw("print(1)\n"), nonce=nonce)
    assert (replay.status_code, replay.json()["code"]) == (401, "nonce_too_low")
    # A paid start of Ocean Node's protocol (escrow) the consumer has not authorized is
    # refused before it runs (tests/api/node/test_paid_compute.py pays for one); the
    # classic start on the same path still reads its own body.
    paid = await oceanjs8.compute_start(chain_client, env["id"], [], raw("print(1)\n"),
                                        token=env["fees"]["8996"][0]["feeToken"])
    assert (paid.status_code, paid.json()["code"]) == (400, "escrow_not_authorized")
    classic = await chain_client.post("/api/services/compute", json={
        "dataset": {"documentId": dataset.did, "serviceId": "0"}, "algorithm": raw("1"),
        "environment": env["id"], "consumerAddress": CONSUMER_ADDRESS, "nonce": "1"})
    assert classic.json()["errors"] == {
        "dataset.transferTxId": "The dataset.transferTxId field is required."}


@pytest.mark.parametrize("body", [
    {"datasets": "x"}, {"payment": {}}, {"datasets": [{"serviceId": "0"}]},
    {"datasets": [], "resources": [{"id": "cpu", "amount": -1}]}])
async def test_bad_v2_bodies_are_400(chain_client: httpx.AsyncClient,
                                     body: dict[str, Any]) -> None:
    base = {"algorithm": raw("1"), "environment": "e", "consumerAddress": CONSUMER_ADDRESS,
            "nonce": "1", "signature": "0x00"}
    r = await chain_client.post("/api/services/compute", json={**base, **body})
    assert r.status_code == 400, r.text
    r = await chain_client.post("/api/services/freeCompute", json={**base, **body})
    assert r.status_code in (400, 401), r.text


async def test_stop_and_result_with_an_auth_token(chain_client: httpx.AsyncClient) -> None:
    """ocean.js 8 given a token: no nonce, no signature, the token in Authorization."""
    env = await v2_environment(chain_client)
    token = (await oceanjs8.generate_auth_token(chain_client)).json()["token"]
    headers = {**oceanjs8.JSON, "Authorization": token}
    _, path = await oceanjs8.endpoint(chain_client, "freeCompute")
    r = await chain_client.post(path, headers=headers, json={
        "consumerAddress": CONSUMER_ADDRESS, "environment": env["id"], "datasets": [],
        "algorithm": raw(TICKS)})
    assert r.status_code == 200, r.text
    job_id = r.json()[0]["jobId"]
    _, path = await oceanjs8.endpoint(chain_client, "computeStop")
    r = await chain_client.put(path + f"?consumerAddress={CONSUMER_ADDRESS}&jobId={job_id}",
                               headers=headers)
    assert r.status_code == 200, r.text
    done = await wait_v2(chain_client, job_id)
    assert done["statusText"] == "Job stopped"
    _, path = await oceanjs8.endpoint(chain_client, "computeResult")
    url = path + f"?consumerAddress={CONSUMER_ADDRESS}&jobId={job_id}&index=0"
    r = await chain_client.get(url, headers={"Authorization": token})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    # Without the token (and no nonce): refused, as before.
    r = await chain_client.get(url)
    assert (r.status_code, r.json()["errors"]) == (400, {
        "nonce": "The nonce field is required."})


async def test_a_job_waiting_for_a_slot_is_queued(harness: ChainHarness,
                                                  chain_settings: Any) -> None:
    from tests.conftest import start_app

    envs = '[{"id": "one-slot", "chainId": 8996, "maxJobs": 1, "freeJobsPerConsumer": 2}]'
    async for client in start_app(chain_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=envs)):
        jobs = []
        for _ in range(2):
            r = await oceanjs8.free_compute_start(client, "one-slot", [], raw(TICKS))
            assert r.status_code == 200, r.text
            jobs.append(r.json()[0]["jobId"])
        deadline = time.monotonic() + 30
        while (env := await v2_environment(client))["runningJobs"] != 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert (env["queuedJobs"], env["queuedFreeJobs"]) == (1, 1)
        status = (await oceanjs8.compute_status(client, jobs[1])).json()[0]
        assert (status["status"], status["statusText"]) == (1, "Job queued")
        for job_id in jobs:
            assert (await oceanjs8.compute_stop(client, job_id)).status_code == 200
