"""Local and Docker environments side by side: each job on its environment's engine."""

from __future__ import annotations

from pathlib import Path

import aiodocker

from tests.unit.compute.conftest import (
    OWNER,
    TEST_OPTIONS,
    finished,
    result_bytes,
    spec,
    wait_status,
)
from tests.unit.compute.docker.conftest import (
    BUSYBOX,
    job_containers,
)
from tests.unit.compute.docker.conftest import (
    TEST_OPTIONS as DOCKER_OPTIONS,
)
from tests.unit.compute.test_config import CHAINS
from tidegate.compute.config import ComputeOptions, machine_engine
from tidegate.compute.engines.routing import EngineRouter
from tidegate.compute.jobs import JobStatus
from tidegate.files.objects import StorageContext
from tidegate.stores.sqlite import SqliteStore


async def test_each_environment_runs_on_its_engine(
        store: SqliteStore, storage: StorageContext, tmp_path: Path,
        docker: aiodocker.Docker) -> None:
    entries = [{"id": "in-docker", "chainId": 8996, "ramGB": 0.25, "maxJobDuration": 60},
               {"id": "in-bwrap", "chainId": 8996, "engine": "local", "maxJobDuration": 60}]
    options = ComputeOptions(environments=entries, runtimes=None,
                             directory=tmp_path / "compute", sandbox=TEST_OPTIONS,
                             docker=DOCKER_OPTIONS)
    engine = machine_engine(options, store, storage, CHAINS, docker)
    assert isinstance(engine, EngineRouter)
    await engine.open()
    try:
        envs = {env.id: env for env in await engine.environments()}
        assert {e.id: e.engine for e in envs.values()} == {"in-docker": "docker",
                                                          "in-bwrap": "local"}
        in_docker = spec(envs["in-docker"], code="cat /etc/tidegate-test-image",
                         container=BUSYBOX)
        in_bwrap = spec(envs["in-bwrap"], code="print('on the host interpreter')")
        await engine.start(in_docker)
        await engine.start(in_bwrap)
        assert (await finished(engine, in_docker.job_id, within=60)).detail == ""
        assert (await finished(engine, in_bwrap.job_id, within=60)).detail == ""
        assert await result_bytes(engine, in_docker.job_id) == b"busybox\n"
        assert await result_bytes(engine, in_bwrap.job_id) == b"on the host interpreter\n"
        assert {r.job_id for r in await engine.jobs(OWNER, None, None)} == {
            in_docker.job_id, in_bwrap.job_id}
        # A stop through the router reaches the Docker engine, which kills the container.
        sleeper = spec(envs["in-docker"], code="sleep 60", container=BUSYBOX)
        await engine.start(sleeper)
        await wait_status(engine, sleeper.job_id, {JobStatus.RUNNING}, within=60)
        [stopped] = await engine.stop(OWNER, sleeper.job_id, None)
        assert stopped.status_text == "Job stopped"
        assert await job_containers(docker, sleeper.job_id) == []
        deleted = await engine.delete(OWNER, None, None)
        assert {r.job_id for r in deleted if r.removed} == {
            in_docker.job_id, in_bwrap.job_id, sleeper.job_id}
    finally:
        await engine.close()
