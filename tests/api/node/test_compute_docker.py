"""Compute v2 as ocean.js 8.6.2 drives it, on the Docker engine (the real test daemon):
free compute on the consumer's file in image ``ubuntu:latest`` with ``node $ALGO``,
its result; a long job's streamable logs while its container runs, then its stop."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiodocker
import httpx
import pytest

from tests.api.node import oceanjs8
from tests.api.node.test_compute import v2_environment, wait_v2
from tests.api.server_helpers import serving
from tests.chain_fixtures import ORIGIN_FILES, ChainHarness
from tests.docker_daemon import DOCKER_HOST, daemon_or_skip
from tidegate.settings import Settings

COUNT = ("const fs = require('fs');\n"
         "const data = fs.readFileSync('/data/inputs/fileObject0/0', 'utf8');\n"
         "const lines = data.split('\\n').length - 1;\n"
         "fs.writeFileSync('/data/outputs/result.txt', 'lines=' + lines);\n"
         "console.log('counted');\n")
TICKS = ("let i = 0;\n"
         "const timer = setInterval(() => { console.log('tick ' + i); i += 1;\n"
         "  if (i > 900) clearInterval(timer) }, 100);\n")


@pytest.fixture
async def docker() -> AsyncIterator[aiodocker.Docker]:
    client = await daemon_or_skip()
    try:
        yield client
    finally:
        await client.close()


async def test_free_compute_logs_and_stop_in_a_container(
        harness: ChainHarness, chain_settings: Callable[..., Settings],
        docker: aiodocker.Docker) -> None:
    image_id = (await docker.images.inspect("ubuntu:latest"))["Id"]
    container = {"entrypoint": "node $ALGO", "image": "ubuntu", "tag": "latest",
                 "checksum": image_id}

    def raw(code: str) -> dict[str, Any]:
        return {"meta": {"rawcode": code, "container": container}}

    # A real socket: the in-process transport buffers a streamed body to its end.
    async with serving(chain_settings(DOCKER_HOST=DOCKER_HOST)) as url, \
            httpx.AsyncClient(base_url=url, timeout=60) as client:
        env = await v2_environment(client)
        datasets = [{"fileObject": {"type": "url", "url": harness.origin + "/data.csv"}}]
        r = await oceanjs8.free_compute_start(client, env["id"], datasets, raw(COUNT))
        assert r.status_code == 200, r.text
        done = await wait_v2(client, r.json()[0]["jobId"], 120)
        assert (done["status"], done["statusText"]) == (70, "Job finished"), done
        output = next(x for x in done["results"] if x["type"] == "output")
        got = await client.get(await oceanjs8.compute_result_url(client, done["jobId"],
                                                                 output["index"]))
        assert got.content == b"lines=%d" % ORIGIN_FILES["data.csv"].count(b"\n")

        r = await oceanjs8.free_compute_start(client, env["id"], [], raw(TICKS))
        assert r.status_code == 200, r.text
        job_id = r.json()[0]["jobId"]
        deadline = time.monotonic() + 60
        while (await oceanjs8.compute_status(client, job_id)).json()[0]["status"] != 40:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        seen = b""
        async with client.stream("GET", await oceanjs8.streamable_logs_url(
                client, job_id)) as stream:
            assert stream.status_code == 200
            async for chunk in stream.aiter_bytes():
                seen += chunk
                if seen.count(b"tick") >= 3:
                    break
        assert seen.startswith(b"tick 0\ntick 1\n")
        stopped = await oceanjs8.compute_stop(client, job_id)
        assert stopped.status_code == 200 and stopped.json()[0]["stopRequested"] is True
        assert (await wait_v2(client, job_id, 60))["statusText"] == "Job stopped"


async def test_a_paid_job_stopped_in_its_container_pays_for_the_minutes_it_ran(
        harness: ChainHarness, chain_settings: Callable[..., Settings],
        docker: aiodocker.Docker) -> None:
    """Settlement reads the job's record, whatever engine wrote it: the Docker engine's
    stopped job claims one minute from the real Escrow; the rest returns to the payer."""
    from tests.api.node.test_paid_compute import PAID_ENV, settled
    from tests.conftest import start_app
    from tests.escrow_helpers import fund, payer_funds
    from tidegate.dev.ocean_txs import ONE_TOKEN

    image_id = (await docker.images.inspect("ubuntu:latest"))["Id"]
    algorithm = {"meta": {"rawcode": TICKS, "container": {
        "entrypoint": "node $ALGO", "image": "ubuntu", "tag": "latest",
        "checksum": image_id}}}
    fund(harness, 100 * ONE_TOKEN)
    async for client in start_app(chain_settings(DOCKER_HOST=DOCKER_HOST,
                                                 TIDEGATE_COMPUTE_ENVIRONMENTS=PAID_ENV)):
        r = await oceanjs8.compute_start(client, "paid", [], algorithm,
                                         token=harness.addresses["Ocean"],
                                         max_job_duration=120)
        assert r.status_code == 200, r.text
        job_id = r.json()[0]["jobId"]
        assert payer_funds(harness) == (96 * ONE_TOKEN, 4 * ONE_TOKEN)
        deadline = time.monotonic() + 60
        while (await oceanjs8.compute_status(client, job_id)).json()[0]["status"] != 40:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        assert (await oceanjs8.compute_stop(client, job_id)).status_code == 200
        assert (await wait_v2(client, job_id, 60))["statusText"] == "Job stopped"
        assert await settled(harness) == (98 * ONE_TOKEN, 0)
