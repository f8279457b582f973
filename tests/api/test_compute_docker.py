"""Compute-to-data over HTTP on the dev chain with the Docker engine (real test daemon).

The ecosystem's own example: an algorithm published with image ``ubuntu``, tag
``latest``, entrypoint ``node $ALGO`` (built offline under that name in the test daemon),
pinned by its checksum; and the same algorithm with a wrong checksum, refused.
"""

from collections.abc import AsyncIterator, Callable

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
from tests.docker_daemon import DOCKER_HOST, daemon_or_skip
from tidegate.settings import Settings


@pytest.fixture
async def docker() -> AsyncIterator[aiodocker.Docker]:
    client = await daemon_or_skip()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def docker_client(chain_settings: Callable[..., Settings],
                        docker: aiodocker.Docker) -> AsyncIterator[httpx.AsyncClient]:
    async for client in start_app(chain_settings(DOCKER_HOST=DOCKER_HOST)):
        yield client


async def test_ubuntu_latest_with_node_runs_in_the_image(
        harness: ChainHarness, docker_client: httpx.AsyncClient,
        docker: aiodocker.Docker) -> None:
    image_id = (await docker.images.inspect("ubuntu:latest"))["Id"]
    container = {"entrypoint": "node $ALGO", "image": "ubuntu", "tag": "latest",
                 "checksum": image_id}
    dataset = publish_dataset(harness)
    algo = publish_algorithm(harness, "count.js", container)
    wrong = publish_algorithm(harness, "count.js", {**container, "checksum": "ab" * 32})
    for asset in (dataset, algo, wrong):
        await wait_for_ddo(docker_client, asset.did)
    env = await environment(docker_client)
    assert env["id"] == "tidegate-local-free"
    assert env["desc"] == "Free compute in the algorithm's container"
    algorithm = {"documentId": algo.did, "serviceId": "0"}
    quotes = (await initialize(docker_client, dataset, algorithm, env["id"])).json()
    dataset_tx = pay(harness, dataset, quotes["datasets"][0], env["consumerAddress"])
    algo_tx = pay(harness, algo, quotes["algorithm"], env["consumerAddress"])
    r = await start(docker_client, dataset, dataset_tx,
                    {**algorithm, "transferTxId": algo_tx}, env["id"])
    assert r.status_code == 200, r.text
    done = await wait_done(docker_client, r.json()[0]["jobId"])
    assert done["status"] == 70 and done["detail"] == "", done
    kinds = {res["type"]: res for res in done["results"]}
    out = await result(docker_client, done["jobId"], kinds["output"]["index"])
    assert (out.status_code, out.content) == (200, b"lines=3")

    refused = {"documentId": wrong.did, "serviceId": "0"}
    quotes = (await initialize(docker_client, dataset, refused, env["id"])).json()
    dataset_tx = pay(harness, dataset, quotes["datasets"][0], env["consumerAddress"])
    algo_tx = pay(harness, wrong, quotes["algorithm"], env["consumerAddress"])
    r = await start(docker_client, dataset, dataset_tx,
                    {**refused, "transferTxId": algo_tx}, env["id"])
    assert (r.status_code, r.json()["code"]) == (400, "image_checksum_mismatch"), r.text
