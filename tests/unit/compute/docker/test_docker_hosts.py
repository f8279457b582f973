"""Several Docker hosts: the shared test daemon and a second private ``dockerd`` this
module starts (:class:`tests.docker_daemon.PrivateDaemon`, its data root on a small tmpfs);
real containers on both, a real crash (SIGKILL) of the second. Nothing is faked.

Jobs wait on a gate file the test writes into their workspace (``/data/logs/go``), so
which jobs run at once is decided by placement, not by timing.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from tests.docker_daemon import (
    DOCKER_HOST,
    HOSTS_ROOT,
    PrivateDaemon,
    fill,
    small_filesystem,
)
from tests.docker_daemon import second_daemon as start_second_daemon
from tests.unit.compute.conftest import OWNER, finished, result_bytes, spec, wait_status
from tests.unit.compute.docker.conftest import (
    BUSYBOX,
    TEST_OPTIONS,
    docker_environment,
    job_containers,
)
from tidegate.compute.engines.docker import DockerEngine, DockerUnavailableError
from tidegate.compute.engines.docker_hosts import HOST_LOST, HOST_LOST_TEXT, DockerHost, HostPool
from tidegate.compute.engines.queueing import InsufficientDiskError
from tidegate.compute.environments import Environment
from tidegate.compute.jobs import JobStatus
from tidegate.compute.workspace import Workspace
from tidegate.files.objects import StorageContext
from tidegate.stores.sqlite import SqliteStore

GATED = "while [ ! -e /data/logs/go ]; do sleep 0.05; done; echo ran"
HOST_OPTIONS = replace(TEST_OPTIONS, place_by_capacity=True, min_free_bytes=64 * 2**20)
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def second_daemon() -> Iterator[PrivateDaemon]:
    """A second dockerd with the busybox test image, its data root a 256 MB tmpfs."""
    with start_second_daemon(256) as daemon:
        yield daemon


@pytest.fixture
async def second(second_daemon: PrivateDaemon) -> AsyncIterator[aiodocker.Docker]:
    """A client of the second daemon (started again if a test left it killed)."""
    if not await _answers(second_daemon.url):
        await asyncio.to_thread(second_daemon.start)
    client = aiodocker.Docker(url=second_daemon.url)
    try:
        yield client
    finally:
        await client.close()


async def _answers(url: str) -> bool:
    client = aiodocker.Docker(url=url)
    try:
        await asyncio.wait_for(client.version(), 5)
        return True
    except Exception:
        return False
    finally:
        await client.close()


Build = Callable[..., Awaitable[DockerEngine]]


@pytest.fixture
async def two_hosts(store: SqliteStore, storage: StorageContext, tmp_path: Path,
                    docker: aiodocker.Docker, second: aiodocker.Docker,
                    second_daemon: PrivateDaemon) -> AsyncIterator[Build]:
    """Opened engines over host 1 (the shared daemon) and host 2 (the second one);
    closed at the end, and no job container of theirs may be left on either."""
    engines: list[DockerEngine] = []

    async def build(*envs: Environment, cpus: tuple[float | None, float | None] = (1, 1),
                    memory: int | None = None, options: Any = HOST_OPTIONS) -> DockerEngine:
        hosts = [DockerHost(docker, url=DOCKER_HOST, name="Docker host 1", cpus=cpus[0],
                            memory_bytes=memory),
                 DockerHost(second, url=second_daemon.url, name="Docker host 2",
                            cpus=cpus[1], memory_bytes=memory)]
        engine = DockerEngine(store, storage, list(envs), tmp_path / "compute", hosts,
                              options, lease_ttl=1.0)
        await engine.open()
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        await engine.close()
    for document in await store.list_jobs(None):
        job_id = json.loads(document)["job_id"]
        assert await job_containers(docker, job_id) == [], f"container of {job_id} left"
        if await _answers(second_daemon.url):
            await _until(lambda j=job_id: _no_container(second, j), "container left")


async def _no_container(client: aiodocker.Docker, job_id: str) -> bool:
    return await job_containers(client, job_id) == []


async def _until(check: Callable[[], Awaitable[bool]], what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


def open_gate(tmp_path: Path, job_id: str) -> None:
    (Workspace(tmp_path / "compute" / "jobs" / job_id).logs / "go").touch()


async def host_of(job_id: str, host1: aiodocker.Docker, host2: aiodocker.Docker) -> int:
    """1 or 2: the daemon the job's container is on (0: none)."""
    on = [n for n, c in ((1, host1), (2, host2)) if await job_containers(c, job_id)]
    assert len(on) <= 1, "a job's container on two hosts"
    return on[0] if on else 0


@pytest.mark.parametrize("room", ["cpu", "memory"])
async def test_jobs_go_to_the_host_with_room_and_wait_in_1_while_both_are_full(
        two_hosts: Build, docker: aiodocker.Docker, second: aiodocker.Docker,
        tmp_path: Path, room: str) -> None:
    """Each host has room for one job: 1 CPU each (jobs: 1 CPU), or 400 MB (jobs:
    256 MB, hosts with CPUs to spare)."""
    env = docker_environment(max_jobs=4, max_job_duration=120)  # 1 CPU, 0.25 GB per job
    engine = await (two_hosts(env) if room == "cpu" else
                    two_hosts(env, cpus=(16, 16), memory=400 * MIB))
    jobs = [spec(env, code=GATED, container=BUSYBOX) for _ in range(4)]
    for job in jobs:
        await engine.start(job)

    async def statuses() -> dict[str, int]:
        return {j.job_id: (await engine.jobs(None, j.job_id, None))[0].status for j in jobs}

    async def two_running() -> bool:
        return list((await statuses()).values()).count(JobStatus.RUNNING) == 2

    await _until(two_running, "two jobs never ran at once", 60)
    now = await statuses()
    running = [j for j, status in now.items() if status == JobStatus.RUNNING]
    waiting = [j for j, status in now.items() if status != JobStatus.RUNNING]
    assert [now[j] for j in waiting] == [JobStatus.WARMING_UP] * 2  # queued, as for maxJobs
    assert sorted([await host_of(j, docker, second) for j in running]) == [1, 2]
    assert [await host_of(j, docker, second) for j in waiting] == [0, 0]
    [listed] = await engine.environments()
    assert listed.current_jobs == 2
    # A job waiting for a host can be stopped.
    [stopped] = await engine.stop(OWNER, waiting[1], None)
    assert (stopped.status, stopped.status_text) == (JobStatus.COMPLETED, "Job stopped")
    # The first to end frees its host: the waiting job runs there.
    freed = await host_of(running[0], docker, second)
    open_gate(tmp_path, running[0])
    assert (await finished(engine, running[0], within=60)).detail == ""
    await wait_status(engine, waiting[0], {JobStatus.RUNNING}, within=60)
    assert await host_of(waiting[0], docker, second) == freed
    for job_id in (running[1], waiting[0]):
        open_gate(tmp_path, job_id)
        assert (await finished(engine, job_id, within=60)).detail == ""
        assert await result_bytes(engine, job_id) == b"ran\n"


async def test_capacity_comes_from_the_daemons_info_and_dockerhost_pins_an_environment(
        two_hosts: Build, docker: aiodocker.Docker, second: aiodocker.Docker,
        second_daemon: PrivateDaemon, tmp_path: Path) -> None:
    info = await second.system.info()
    pinned = docker_environment(id="on-two", docker_host=second_daemon.url)
    too_big = docker_environment(id="too-big", cpu_number=int(info["NCPU"]) + 1)
    engine = await two_hosts(pinned, too_big, cpus=(None, None))
    host2 = engine.hosts[1]
    assert (host2.capacity_cpus, host2.capacity_memory) == (info["NCPU"], info["MemTotal"])
    # Advertise only what runs: no host has the CPUs of too-big.
    assert [e.id for e in await engine.environments()] == ["on-two"]
    with pytest.raises(DockerUnavailableError):
        await engine.start(spec(too_big, code="echo", container=BUSYBOX))
    job = spec(pinned, code=GATED, container=BUSYBOX)
    await engine.start(job)
    await wait_status(engine, job.job_id, {JobStatus.RUNNING}, within=60)
    assert await host_of(job.job_id, docker, second) == 2
    open_gate(tmp_path, job.job_id)
    assert (await finished(engine, job.job_id, within=60)).detail == ""


async def test_a_host_killed_mid_job_fails_its_job_the_other_works_and_it_comes_back(
        two_hosts: Build, docker: aiodocker.Docker, second: aiodocker.Docker,
        second_daemon: PrivateDaemon, tmp_path: Path) -> None:
    on_one = docker_environment(id="on-one", docker_host=DOCKER_HOST, max_job_duration=120)
    on_two = docker_environment(id="on-two", docker_host=second_daemon.url,
                                max_job_duration=120)
    engine = await two_hosts(on_one, on_two)
    doomed = spec(on_two, code=GATED, container=BUSYBOX)
    survivor = spec(on_one, code=GATED, container=BUSYBOX)
    await engine.start(doomed)
    await engine.start(survivor)
    await wait_status(engine, doomed.job_id, {JobStatus.RUNNING}, within=60)
    await wait_status(engine, survivor.job_id, {JobStatus.RUNNING}, within=60)

    second_daemon.kill()  # the host goes away as in a crash

    lost = await finished(engine, doomed.job_id, within=60)
    assert (lost.status, lost.status_text, lost.detail) == (
        JobStatus.COMPLETED, HOST_LOST_TEXT, HOST_LOST)
    assert [r.type for r in lost.results] == ["algorithmLog"]
    assert [e.id for e in await engine.environments()] == ["on-one"]
    assert await engine.unavailable() is None  # host 1 still runs jobs
    with pytest.raises(DockerUnavailableError):
        await engine.start(spec(on_two, code="echo", container=BUSYBOX))
    open_gate(tmp_path, survivor.job_id)
    assert (await finished(engine, survivor.job_id, within=60)).detail == ""
    assert await result_bytes(engine, survivor.job_id) == b"ran\n"

    await asyncio.to_thread(second_daemon.start)  # back: retried, tidied, used again

    async def back() -> bool:
        return [e.id for e in await engine.environments()] == ["on-one", "on-two"]

    await _until(back, "the host that came back was never used again", 60)
    await _until(lambda: _no_container(second, doomed.job_id),
                 "the lost job's container was not removed once its host was back")
    again = spec(on_two, code=GATED, container=BUSYBOX)
    await engine.start(again)
    await wait_status(engine, again.job_id, {JobStatus.RUNNING}, within=60)
    assert await host_of(again.job_id, docker, second) == 2
    open_gate(tmp_path, again.job_id)
    assert (await finished(engine, again.job_id, within=60)).detail == ""


async def test_a_host_whose_data_root_is_nearly_full_gets_no_job(
        two_hosts: Build, docker: aiodocker.Docker, second: aiodocker.Docker,
        second_daemon: PrivateDaemon, tmp_path: Path) -> None:
    """The second daemon's data root is a real 256 MB tmpfs, filled by the test."""
    pinned = docker_environment(id="on-two", docker_host=second_daemon.url)
    anywhere = docker_environment(id="anywhere", max_jobs=2, max_job_duration=120)
    engine = await two_hosts(pinned, anywhere, cpus=(2, 2))
    assert engine.hosts[1].root_dir == second_daemon.data_root
    first = spec(anywhere, code=GATED, container=BUSYBOX)
    await engine.start(first)
    await wait_status(engine, first.job_id, {JobStatus.RUNNING}, within=60)
    assert await host_of(first.job_id, docker, second) == 1  # both idle: the first host
    filler = fill(second_daemon.data_root, 32 * MIB)  # below the 64 MB floor
    try:
        with pytest.raises(InsufficientDiskError) as refused:
            await engine.start(spec(pinned, code="echo", container=BUSYBOX))
        assert (refused.value.status, refused.value.code) == (503, "insufficient_disk")
        assert "daemon" in refused.value.message
        # Host 2 is the less loaded, but its disk is full: host 1 takes the job.
        other = spec(anywhere, code=GATED, container=BUSYBOX)
        await engine.start(other)
        await wait_status(engine, other.job_id, {JobStatus.RUNNING}, within=60)
        assert await host_of(other.job_id, docker, second) == 1
        for job in (first, other):
            open_gate(tmp_path, job.job_id)
            assert (await finished(engine, job.job_id, within=60)).detail == ""
    finally:
        filler.unlink()
    job = spec(pinned, code="echo room again", container=BUSYBOX)
    await engine.start(job)
    assert await result_bytes(engine, (await finished(engine, job.job_id, 60)).job_id) \
        == b"room again\n"


async def test_a_job_is_refused_while_the_compute_disk_is_nearly_full(
        store: SqliteStore, storage: StorageContext, docker: aiodocker.Docker) -> None:
    """The compute directory on a real 64 MB tmpfs the test fills (no statvfs faked)."""
    mount = HOSTS_ROOT / f"disk-{os.getpid()}"
    env = docker_environment(disk_gb=4 * MIB / 1024**3)  # inputs + outputs: 8 MB
    options = replace(TEST_OPTIONS, min_free_bytes=16 * MIB)
    with small_filesystem(mount, 64) as disk:
        engine = DockerEngine(store, storage, [env], disk / "compute", docker, options)
        await engine.open()
        try:
            filler = fill(disk, 20 * MIB)  # 20 MB left < 8 MB + the 16 MB floor
            with pytest.raises(InsufficientDiskError) as refused:
                await engine.start(spec(env, code="echo", container=BUSYBOX))
            assert (refused.value.status, refused.value.code) == (503, "insufficient_disk")
            assert await engine.jobs(None, None, None) == []  # nothing persisted
            filler.unlink()
            job = spec(env, code="echo fits", container=BUSYBOX)
            await engine.start(job)
            assert (await finished(engine, job.job_id, within=60)).detail == ""
            assert await result_bytes(engine, job.job_id) == b"fits\n"
        finally:
            await engine.close()
    mount.rmdir()


async def test_no_host_answering_refuses_jobs_and_offers_no_environment(
        store: SqliteStore, storage: StorageContext, tmp_path: Path) -> None:
    """Real clients to two sockets no daemon listens on."""
    clients = [aiodocker.Docker(url=f"unix://{tmp_path}/absent-{n}.sock") for n in (1, 2)]
    hosts = [DockerHost(c, url=f"unix://{tmp_path}/absent-{n}.sock", name=f"Docker host {n}")
             for n, c in enumerate(clients, start=1)]
    engine = DockerEngine(store, storage, [docker_environment()], tmp_path / "compute",
                          hosts, HOST_OPTIONS)
    try:
        refusal = await engine.unavailable()
        assert refusal is not None and (refusal.status, refusal.code) == (
            503, "docker_unavailable")
        assert "no Docker host answers" in refusal.message
        assert "absent" not in refusal.message  # no address in what clients see
        assert await engine.environments() == []
        with pytest.raises(DockerUnavailableError):
            await engine.start(spec(docker_environment(), code="echo", container=BUSYBOX))
    finally:
        await engine.close()
        for client in clients:
            await client.close()


async def test_a_host_that_does_not_answer_is_retried_with_a_growing_backoff(
        tmp_path: Path) -> None:
    """A real client to a socket no daemon listens on; the delays are read from the
    pool's schedule, not measured."""
    client = aiodocker.Docker(url=f"unix://{tmp_path}/absent.sock")
    host = DockerHost(client, url=f"unix://{tmp_path}/absent.sock", name="Docker host 1")
    pool = HostPool([host], capacity=True, probe_interval=1.0, max_backoff=4.0)
    try:
        delays = []
        for _ in range(4):
            before = time.monotonic()
            assert not await pool.probe(host)
            delays.append(round(host.next_probe - before))
        assert delays == [1, 2, 4, 4]
        assert host.lost.is_set() and not host.up
        assert host.reason == "Docker host 1 does not answer (DockerError)"
        assert pool.unavailable_reason() == host.reason
        assert await pool.check() == []  # not due yet: not probed
        assert host.failures == 4
    finally:
        await client.close()


async def test_what_another_tidegate_process_runs_on_a_host_counts(
        two_hosts: Build, docker: aiodocker.Docker, second: aiodocker.Docker,
        tmp_path: Path) -> None:
    """Two engines (two processes' worth: own instances, one store) on the same two
    hosts of 1 CPU each: the second sees the first's container on host 1."""
    env = docker_environment(max_jobs=2, max_job_duration=120)
    first, other = await two_hosts(env), await two_hosts(env)
    mine = spec(env, code=GATED, container=BUSYBOX)
    await first.start(mine)
    await wait_status(first, mine.job_id, {JobStatus.RUNNING}, within=60)
    assert await host_of(mine.job_id, docker, second) == 1
    theirs, waiting = (spec(env, code=GATED, container=BUSYBOX) for _ in range(2))
    await other.start(theirs)
    await wait_status(other, theirs.job_id, {JobStatus.RUNNING}, within=60)
    assert await host_of(theirs.job_id, docker, second) == 2  # host 1 is the first's
    await other.start(waiting)
    [record] = await other.jobs(None, waiting.job_id, None)
    assert record.status == JobStatus.WARMING_UP and not await host_of(
        waiting.job_id, docker, second)
    open_gate(tmp_path, mine.job_id)  # host 1 frees: the waiting job runs there
    assert (await finished(first, mine.job_id, within=60)).detail == ""
    await wait_status(other, waiting.job_id, {JobStatus.RUNNING}, within=60)
    assert await host_of(waiting.job_id, docker, second) == 1
    for job_id in (theirs.job_id, waiting.job_id):
        open_gate(tmp_path, job_id)
        assert (await finished(other, job_id, within=60)).detail == ""
