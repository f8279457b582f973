"""Several Docker hosts over HTTP: ``TIDEGATE_DOCKER_HOSTS`` with the shared test daemon
and a second private dockerd (:func:`tests.docker_daemon.second_daemon`), killed for real.

``computeEnvironments`` advertises only what runs: an environment pinned to the host
that went away disappears, the other stays; ``/health/ready`` keeps ``compute: ok``
while one host answers. No address appears in any answer.
"""

import asyncio
import json
import time
from collections.abc import Callable, Iterator

import aiodocker
import httpx
import pytest

from tests.conftest import start_app
from tests.docker_daemon import DOCKER_HOST, PrivateDaemon, daemon_or_skip, second_daemon
from tidegate.settings import Settings


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
