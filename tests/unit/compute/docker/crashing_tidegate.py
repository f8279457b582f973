"""A Tidegate process that starts one Docker job and then waits to be killed (-9).

``python -m tests.unit.compute.docker.crashing_tidegate DB COMPUTE_DIR JOB_ID DOCKER_HOST``
prints ``running`` once the job's container runs. The restart test kills it there.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

import aiodocker

from tests.local_http import local_fetcher
from tests.unit.compute.conftest import spec, wait_status
from tests.unit.compute.docker.conftest import BUSYBOX, TEST_OPTIONS, docker_environment
from tidegate.chain.clients import Chains
from tidegate.compute.engines.docker import DockerEngine
from tidegate.compute.jobs import JobStatus
from tidegate.files.objects import StorageContext
from tidegate.stores.sqlite import SqliteStore


async def main(db: str, compute_dir: str, job_id: str, docker_host: str) -> None:
    store = SqliteStore(Path(db))
    await store.open()
    fetcher, client = local_fetcher()
    docker = aiodocker.Docker(url=docker_host)
    storage = StorageContext(None, None, Chains({}), fetcher, 1024 * 1024)
    env = docker_environment(max_job_duration=120)
    engine = DockerEngine(store, storage, [env], Path(compute_dir), docker, TEST_OPTIONS,
                          lease_ttl=1.0)
    await engine.open()
    job = replace(spec(env, code="echo up\nsleep 120", container=BUSYBOX), job_id=job_id)
    await engine.start(job)
    await wait_status(engine, job_id, {JobStatus.RUNNING}, within=60)
    print("running", flush=True)
    await asyncio.sleep(3600)
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
