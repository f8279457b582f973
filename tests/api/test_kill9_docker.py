"""Restarts and neighbours on the Docker engine (the private test daemon).

A real ``tidegate serve`` killed with SIGKILL while a job's container runs, then started
again on the same data dir (issue #12 must-show: a Tidegate killed during a job cleans
up at restart); and a second Tidegate (its own data dir) on the same daemon, whose
start-up clean-up must leave the first one's running container alone.

No client can express ``kill -9``, so these are API-level tests: the dev chain
(:class:`~tests.chain_fixtures.ChainHarness`), HTTP requests as ocean.js sends them, and
the daemon asked directly for the job's container.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiodocker
import httpx
import pytest

from tests.api.test_compute import environment, initialize, pay, publish_dataset, start
from tests.api.test_kill9 import _environment, serving
from tests.chain_fixtures import ChainHarness, wait_for_ddo
from tests.conftest import start_app
from tests.docker_daemon import DOCKER_HOST, daemon_or_skip
from tests.helpers import CONSUMER_ADDRESS
from tidegate.compute.engines.container_spec import JOB_LABEL
from tidegate.settings import Settings

SLEEPER = "print('up', flush=True)\nimport time\ntime.sleep(300)\n"
LEASE_LAPSE = 60  # the dead process's lease (15 s) must lapse, then a sweep (every 15 s)


@pytest.fixture
async def docker() -> AsyncIterator[aiodocker.Docker]:
    client = await daemon_or_skip()
    try:
        yield client
    finally:
        await client.close()


async def containers_of(docker: aiodocker.Docker, job_id: str) -> list[str]:
    found = await docker.containers.list(
        all="true", filters=json.dumps({"label": [f"{JOB_LABEL}={job_id}"]}))
    return [c.id for c in found]


async def job_record(client: httpx.AsyncClient, job_id: str) -> dict[str, object]:
    [job] = (await client.get("/api/services/compute", params={
        "consumerAddress": CONSUMER_ADDRESS, "jobId": job_id})).json()
    return dict(job)


def sleeper(image_id: str) -> dict[str, object]:
    """A raw algorithm that logs and sleeps 300 s in ``ubuntu:latest``."""
    return {"meta": {"rawcode": SLEEPER, "container": {
        "entrypoint": "python3 $ALGO", "image": "ubuntu", "tag": "latest",
        "checksum": image_id}}}


async def start_sleeper(client: httpx.AsyncClient, harness: ChainHarness,
                        docker: aiodocker.Docker) -> tuple[str, str]:
    """Publish a dataset, start the sleeper on it; its job id and container, running."""
    dataset = publish_dataset(harness, allowRawAlgorithm=True)
    raw = sleeper((await docker.images.inspect("ubuntu:latest"))["Id"])
    await wait_for_ddo(client, dataset.did)
    env_info = await environment(client)
    quotes = (await initialize(client, dataset, raw, env_info["id"])).json()
    job_tx = pay(harness, dataset, quotes["datasets"][0], env_info["consumerAddress"])
    r = await start(client, dataset, job_tx, raw, env_info["id"])
    assert r.status_code == 200, r.text
    job_id = str(r.json()[0]["jobId"])
    deadline = time.monotonic() + 60
    while (await job_record(client, job_id))["status"] != 40:
        assert time.monotonic() < deadline, await job_record(client, job_id)
        await asyncio.sleep(0.2)
    [container] = await containers_of(docker, job_id)
    assert (await (await docker.containers.get(container)).show())["State"]["Running"]
    return job_id, container


async def test_a_tidegate_killed_during_a_docker_job_cleans_up_at_restart(
        harness: ChainHarness, docker: aiodocker.Docker, tmp_path: Path) -> None:
    env = {**_environment(harness, tmp_path / "data"), "DOCKER_HOST": DOCKER_HOST}
    log = tmp_path / "serve.log"
    async with serving(env, log) as (url, proc), \
            httpx.AsyncClient(base_url=url, timeout=30) as client:
        job_id, container = await start_sleeper(client, harness, docker)
        proc.send_signal(signal.SIGKILL)  # no clean-up of its own
        await proc.wait()

    # The dead process left its container running.
    assert await containers_of(docker, job_id) == [container]
    async with serving(env, log) as (url, _), \
            httpx.AsyncClient(base_url=url, timeout=30) as client:
        deadline = time.monotonic() + LEASE_LAPSE
        while (job := await job_record(client, job_id))["status"] != 70:
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.5)
        assert job["detail"] == "Interrupted by a Tidegate restart.", job
        while await containers_of(docker, job_id):
            assert time.monotonic() < deadline, "the orphaned container was not removed"
            await asyncio.sleep(0.5)


async def test_a_second_tidegate_on_the_daemon_leaves_the_first_ones_job_alone(
        harness: ChainHarness, chain_settings: Callable[..., Settings],
        docker: aiodocker.Docker, tmp_path: Path) -> None:
    """Two deployments (own stores and compute directories) may share a daemon: the
    second one's clean-up of containers "no live process holds" must not take the
    first one's (found: it removed every labelled container its store did not know)."""
    async for first in start_app(chain_settings(DOCKER_HOST=DOCKER_HOST)):
        job_id, container = await start_sleeper(first, harness, docker)
        second_settings = chain_settings(DOCKER_HOST=DOCKER_HOST,
                                         TIDEGATE_DATA_DIR=str(tmp_path / "second"))
        async for second in start_app(second_settings):
            # Its engine swept the daemon at start; one more request to be sure it is up.
            assert (await second.get("/api/services/computeEnvironments")).status_code == 200
        assert await containers_of(docker, job_id) == [container]
        assert (await (await docker.containers.get(container)).show())["State"]["Running"]
        assert (await job_record(first, job_id))["status"] == 40
    assert await containers_of(docker, job_id) == []  # the first one's shutdown removed it
