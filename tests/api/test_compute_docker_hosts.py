"""Several Docker hosts and the disk-space guard over HTTP, on the dev chain.

``TIDEGATE_DOCKER_HOSTS`` with the shared test daemon and a second private dockerd
(:func:`tests.docker_daemon.second_daemon`), killed for real: ``computeEnvironments``
advertises only what runs (an environment pinned to the host that went away disappears,
the other stays); ``/health/ready`` keeps ``compute: ok`` while one host answers. No
address appears in any answer. The disk guard: the compute directory on a real small
tmpfs, filled, refuses ``POST /compute`` with a JSON 503 until space is freed.
"""

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiodocker
import httpx
import pytest

from tests.api.test_compute import (
    environment,
    initialize,
    pay,
    publish_algorithm,
    publish_dataset,
    result,
    start,
    wait_done,
)
from tests.chain_fixtures import ChainHarness, wait_for_ddo
from tests.conftest import start_app
from tests.docker_daemon import (
    DOCKER_HOST,
    HOSTS_ROOT,
    PrivateDaemon,
    daemon_or_skip,
    fill,
    second_daemon,
    small_filesystem,
)
from tidegate.settings import Settings
from tidegate.startup import check_startup


@pytest.fixture(scope="module")
def other_daemon() -> Iterator[PrivateDaemon]:
    with second_daemon(128) as daemon:
        yield daemon


async def _ids(client: httpx.AsyncClient) -> list[str]:
    answer = await client.get("/api/services/computeEnvironments")
    assert answer.status_code == 200
    return [env["id"] for env in answer.json()["8996"]]


async def test_environments_and_readiness_follow_a_host_that_goes_away(
        chain_settings: Callable[..., Settings], other_daemon: PrivateDaemon) -> None:
    docker: aiodocker.Docker = await daemon_or_skip()
    await docker.close()
    environments = [{"id": "on-one", "chainId": 8996, "ramGB": 0.25, "dockerHost": DOCKER_HOST},
                    {"id": "on-two", "chainId": 8996, "ramGB": 0.25,
                     "dockerHost": other_daemon.url}]
    settings = chain_settings(TIDEGATE_DOCKER_HOSTS=f"{DOCKER_HOST},{other_daemon.url}",
                              TIDEGATE_COMPUTE_ENVIRONMENTS=json.dumps(environments))
    try:
        async for client in start_app(settings):
            assert await _ids(client) == ["on-one", "on-two"]
            other_daemon.kill()
            deadline = time.monotonic() + 60  # probed every 15 s
            while await _ids(client) != ["on-one"]:
                assert time.monotonic() < deadline, "the lost host's environment stayed"
                await asyncio.sleep(0.5)
            ready = await client.get("/health/ready")
            assert ready.status_code == 200 and ready.json()["compute"] == "ok"
            body = (await client.get("/api/services/computeEnvironments")).text + ready.text
            assert "docker.sock" not in body and "hosts-docker" not in body
    finally:
        await asyncio.to_thread(other_daemon.start)  # for the module's other users


async def test_a_job_is_refused_with_a_json_503_while_the_disk_is_nearly_full(
        harness: ChainHarness, chain_settings: Callable[..., Settings]) -> None:
    docker: aiodocker.Docker = await daemon_or_skip()
    try:
        image_id = (await docker.images.inspect("ubuntu:latest"))["Id"]
    finally:
        await docker.close()
    container = {"entrypoint": "node $ALGO", "image": "ubuntu", "tag": "latest",
                 "checksum": image_id}
    small = [{"id": "small-disk", "chainId": 8996, "ramGB": 0.25,
              "diskGB": 4 / 1024}]  # inputs + outputs: 8 MB
    mount = HOSTS_ROOT / f"api-disk-{os.getpid()}"
    with small_filesystem(mount, 64) as disk:
        settings = chain_settings(DOCKER_HOST=DOCKER_HOST,
                                  TIDEGATE_COMPUTE_DIR=str(disk / "compute"),
                                  TIDEGATE_COMPUTE_MIN_FREE_MB="16",
                                  TIDEGATE_COMPUTE_ENVIRONMENTS=json.dumps(small))
        async for client in start_app(settings):
            dataset = publish_dataset(harness)
            algo = publish_algorithm(harness, "count.js", container)
            for asset in (dataset, algo):
                await wait_for_ddo(client, asset.did)
            env = await environment(client)
            algorithm = {"documentId": algo.did, "serviceId": "0"}

            async def order_and_start() -> httpx.Response:
                quotes = (await initialize(client, dataset, algorithm, env["id"])).json()
                dataset_tx = pay(harness, dataset, quotes["datasets"][0],
                                 env["consumerAddress"])
                algo_tx = pay(harness, algo, quotes["algorithm"], env["consumerAddress"])
                return await start(client, dataset, dataset_tx,
                                   {**algorithm, "transferTxId": algo_tx}, env["id"])

            filler = fill(disk, 20 * 1024 * 1024)  # 20 MB < 8 MB + the 16 MB floor
            refused = await order_and_start()
            assert refused.status_code == 503, refused.text
            assert refused.json() == {
                "error": "Compute is unavailable: not enough free disk space for another "
                         "job; try again later.", "code": "insufficient_disk"}
            filler.unlink()
            accepted = await order_and_start()
            assert accepted.status_code == 200, accepted.text
            done = await wait_done(client, accepted.json()[0]["jobId"])
            assert done["status"] == 70 and done["detail"] == "", done
            kinds = {res["type"]: res for res in done["results"]}
            out = await result(client, done["jobId"], kinds["output"]["index"])
            assert (out.status_code, out.content) == (200, b"lines=3")
    mount.rmdir()


async def test_the_banner_counts_the_hosts(chain_settings: Callable[..., Settings],
                                           tmp_path: Path) -> None:
    docker: aiodocker.Docker = await daemon_or_skip()
    await docker.close()
    report = await check_startup(chain_settings(
        TIDEGATE_DOCKER_HOSTS=f"{DOCKER_HOST},unix://{tmp_path}/other.sock"))
    assert report.compute.startswith("docker (2 hosts in TIDEGATE_DOCKER_HOSTS, the first "
                                     "daemon "), report.compute
    assert "docker.sock" not in report.compute and "other.sock" not in report.compute
