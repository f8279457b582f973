"""Docker engine fixtures on the REAL private test daemon (:mod:`tests.docker_daemon`).

Without a daemon every test that needs one is skipped with the reason; nothing is faked.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from tests.docker_daemon import daemon_or_skip
from tests.unit.compute.conftest import environment
from tidegate.compute.engines.container_spec import JOB_LABEL, DockerOptions
from tidegate.compute.engines.docker import DockerEngine
from tidegate.compute.environments import Environment
from tidegate.files.objects import StorageContext
from tidegate.stores.sqlite import SqliteStore

BUSYBOX = {"image": "tidegate-test/busybox", "tag": "1", "entrypoint": "sh $ALGO"}
UBUNTU_PYTHON = {"image": "ubuntu", "tag": "latest", "entrypoint": "python3 $ALGO"}
UBUNTU_NODE = {"image": "ubuntu", "tag": "latest", "entrypoint": "node $ALGO"}
TEST_OPTIONS = DockerOptions(max_processes=32, tmp_bytes=8 * 1024 * 1024, poll_interval=0.05,
                             pull_timeout=20)


def docker_environment(**overrides: Any) -> Environment:
    values: dict[str, Any] = {"id": "docker-env", "ram_gb": 0.25, "max_job_duration": 20}
    values.update(overrides)
    return environment(**values)


@pytest.fixture
async def docker() -> AsyncIterator[aiodocker.Docker]:
    """A client of the test daemon (skips, saying why, when there is none)."""
    client = await daemon_or_skip()
    try:
        yield client
    finally:
        await client.close()


async def job_containers(docker: aiodocker.Docker, job_id: str | None = None) -> list[str]:
    """Ids of the daemon's containers labelled as Tidegate jobs (of ``job_id``)."""
    label = JOB_LABEL if job_id is None else f"{JOB_LABEL}={job_id}"
    found = await docker.containers.list(all="true", filters=json.dumps({"label": [label]}))
    return [c.id for c in found]


DockerFactory = Callable[..., Awaitable[DockerEngine]]


@pytest.fixture
async def make_docker_engine(store: SqliteStore, storage: StorageContext, tmp_path: Path,
                             docker: aiodocker.Docker) -> AsyncIterator[DockerFactory]:
    """Opened Docker engines on the shared store; closed at the end, and no job
    container of theirs may be left on the daemon."""
    engines: list[DockerEngine] = []

    async def build(*envs: Environment, options: DockerOptions = TEST_OPTIONS,
                    **kwargs: Any) -> DockerEngine:
        engine = DockerEngine(store, storage, list(envs) or [docker_environment()],
                              tmp_path / "compute", docker, options, **kwargs)
        await engine.open()
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        await engine.close()
    for document in await store.list_jobs(None):
        job_id = json.loads(document)["job_id"]
        assert await job_containers(docker, job_id) == [], f"container of {job_id} left"
