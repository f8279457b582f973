"""Pulling from the local test registry: by digest, pinned by the registry's digest."""

from __future__ import annotations

import asyncio
import contextlib
import io
import tarfile
from dataclasses import replace

import aiodocker
import httpx
import pytest
from aiodocker.exceptions import DockerError

from tests.docker_daemon import PRIVATE_CREDENTIALS, PRIVATE_REGISTRY, REGISTRY
from tests.unit.compute.conftest import OWNER, finished, result_bytes, spec, wait_status
from tests.unit.compute.docker.conftest import (
    TEST_OPTIONS,
    DockerFactory,
    docker_environment,
    job_containers,
)
from tidegate.compute.jobs import JobStatus

REPOSITORY = f"{REGISTRY}/tidegate-test/pulled"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


async def registry_digest() -> str:
    """The digest the registry serves for ``pulled:1`` (skips without a registry)."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.head(f"http://{REGISTRY}/v2/tidegate-test/pulled/manifests/1",
                                  headers={"Accept": MANIFEST})
    except httpx.HTTPError as exc:
        pytest.skip(f"no test registry at {REGISTRY} ({type(exc).__name__}): "
                    "run `make docker-setup`")
    if r.status_code != 200:
        pytest.skip(f"the test registry has no tidegate-test/pulled:1 ({r.status_code}): "
                    "run `make docker-setup`")
    return r.headers["Docker-Content-Digest"]


async def forget(docker: aiodocker.Docker, *references: str) -> None:
    """Untag the pulled image so the next job must pull it again."""
    for reference in references:
        with contextlib.suppress(DockerError):
            await docker.images.delete(reference)


async def test_pull_by_digest_then_run(make_docker_engine: DockerFactory,
                                       docker: aiodocker.Docker) -> None:
    digest = await registry_digest()
    by_digest = f"{REPOSITORY}@{digest}"
    await forget(docker, by_digest, f"{REPOSITORY}:1")
    with pytest.raises(DockerError) as absent:
        await docker.images.inspect(by_digest)
    assert absent.value.status == 404  # so the job must pull it
    engine = await make_docker_engine()
    container = {"image": by_digest, "entrypoint": "sh $ALGO", "checksum": digest}
    job = spec(docker_environment(), code="cat /etc/tidegate-test-image", container=container)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=60)
    assert record.status == JobStatus.COMPLETED and record.detail == "", record
    assert await result_bytes(engine, job.job_id) == b"busybox\n"
    assert digest in [d.rpartition("@")[2] for d in
                      (await docker.images.inspect(by_digest))["RepoDigests"]]
    await forget(docker, by_digest)


async def test_a_pulled_image_with_another_checksum_ends_in_32(
        make_docker_engine: DockerFactory, docker: aiodocker.Docker) -> None:
    await registry_digest()
    await forget(docker, f"{REPOSITORY}:1")
    engine = await make_docker_engine()
    container = {"image": REPOSITORY, "tag": "1", "entrypoint": "sh $ALGO",
                 "checksum": "sha256:" + "0" * 64}
    job = spec(docker_environment(), code="echo never", container=container)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=60)
    assert record.status == JobStatus.ALGORITHM_PROVISIONING_FAILED, record
    assert record.detail.startswith(
        f"The image {REPOSITORY}:1 does not match the algorithm's container.checksum"), record
    await forget(docker, f"{REPOSITORY}:1")


async def test_an_image_the_registry_does_not_have_ends_in_32(
        make_docker_engine: DockerFactory) -> None:
    await registry_digest()
    engine = await make_docker_engine()
    container = {"image": f"{REGISTRY}/tidegate-test/nothing", "tag": "1",
                 "entrypoint": "sh $ALGO"}
    job = spec(docker_environment(), code="echo never", container=container)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=60)
    assert record.status == JobStatus.ALGORITHM_PROVISIONING_FAILED
    assert record.detail == (f"Could not pull the image {REGISTRY}/tidegate-test/nothing:1: "
                             "the registry has no such image."), record.detail


async def test_registry_credentials_from_settings_are_sent_to_their_registry(
        make_docker_engine: DockerFactory, docker: aiodocker.Docker) -> None:
    private = f"{PRIVATE_REGISTRY}/tidegate-test/private"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.get(f"http://{PRIVATE_REGISTRY}/v2/")
    except httpx.HTTPError as exc:
        pytest.skip(f"no private test registry at {PRIVATE_REGISTRY} ({type(exc).__name__})")
    assert r.status_code == 401  # it does want credentials
    await forget(docker, f"{private}:1")
    container = {"image": private, "tag": "1", "entrypoint": "sh $ALGO"}
    anonymous = await make_docker_engine()
    job = spec(docker_environment(), code="echo never", container=container)
    await anonymous.start(job)
    record = await finished(anonymous, job.job_id, within=60)
    assert record.status == JobStatus.ALGORITHM_PROVISIONING_FAILED
    assert record.detail == (f"Could not pull the image {private}:1: the registry refused "
                             "access (unknown image, or credentials needed)."), record.detail
    assert "tidegate-test-registry" not in record.detail
    wrong_registry = {"registry.example:5000": PRIVATE_CREDENTIALS}
    trusted = await make_docker_engine(options=replace(
        TEST_OPTIONS, registry_auth={**wrong_registry, PRIVATE_REGISTRY: PRIVATE_CREDENTIALS}))
    job = spec(docker_environment(), code="cat /etc/tidegate-test-image", container=container)
    await trusted.start(job)
    record = await finished(trusted, job.job_id, within=60)
    assert record.status == JobStatus.COMPLETED and record.detail == "", record
    assert await result_bytes(trusted, job.job_id) == b"busybox\n"
    await forget(docker, f"{private}:1")


async def cache_images(docker: aiodocker.Docker) -> tuple[list[str], int]:
    """``cache-a:1`` and ``cache-b:1`` in the test registry (two distinct small images,
    built offline from the busybox test image), absent from the daemon; and the size
    the daemon reports for each."""
    references = []
    size = 0
    for name in ("a", "b"):
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            dockerfile = (f"FROM tidegate-test/busybox:1\n"
                          f"LABEL org.tidegate.test.cache={name}\n").encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(dockerfile)
            tar.addfile(info, io.BytesIO(dockerfile))
        archive.seek(0)
        built = f"tidegate-test/cache-{name}:1"
        await docker.images.build(fileobj=archive, encoding="gzip", tag=built)
        reference = f"{REGISTRY}/tidegate-test/cache-{name}:1"
        await docker.images.tag(built, f"{REGISTRY}/tidegate-test/cache-{name}", tag="1")
        await docker.images.push(f"{REGISTRY}/tidegate-test/cache-{name}", tag="1")
        image = await docker.images.inspect(reference)
        size = int(image["Size"])
        # Every reference (both tags, the push's repository digest): the test's own image.
        await docker.images.delete(str(image["Id"]), force=True)
        references.append(reference)
    return references, size


async def present(docker: aiodocker.Docker, reference: str) -> bool:
    try:
        await docker.images.inspect(reference)
    except DockerError as exc:
        assert exc.status == 404
        return False
    return True


async def test_the_image_cache_evicts_the_least_recently_used_pulled_image_not_in_use(
        make_docker_engine: DockerFactory, docker: aiodocker.Docker) -> None:
    await registry_digest()
    (image_a, image_b), size = await cache_images(docker)
    assert not await present(docker, image_a) and not await present(docker, image_b)
    operators = "tidegate-test/busybox:1"  # the daemon had it: never Tidegate's to remove
    engine = await make_docker_engine(options=replace(
        TEST_OPTIONS, image_cache_bytes=size * 3 // 2))  # room for one of them

    async def run(reference: str, code: str = "echo ok") -> str:
        name, _, tag = reference.rpartition(":")
        job = spec(docker_environment(), code=code,
                   container={"image": name, "tag": tag, "entrypoint": "sh $ALGO"})
        await engine.start(job)
        return job.job_id

    async def settled(expected_a: bool, expected_b: bool) -> None:
        for _ in range(100):  # eviction runs beside the job, right after the pull
            if (await present(docker, image_a), await present(docker, image_b)) == (
                    expected_a, expected_b):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"a present: {await present(docker, image_a)}, "
                             f"b present: {await present(docker, image_b)}")

    try:
        assert (await finished(engine, await run(image_a), within=60)).detail == ""
        assert set(await engine.images.tracked()) == {image_a}
        await settled(True, False)
        assert (await finished(engine, await run(image_b), within=60)).detail == ""
        await settled(False, True)  # over the cap: a, least recently used, removed
        assert set(await engine.images.tracked()) == {image_b}
        assert await present(docker, operators)

        # Both in use by running jobs: pulling a again goes over the cap, and nothing
        # can be removed.
        on_b = await run(image_b, "sleep 30")
        await wait_status(engine, on_b, {JobStatus.RUNNING}, within=60)
        on_a = await run(image_a, "sleep 30")
        await wait_status(engine, on_a, {JobStatus.RUNNING}, within=60)
        assert await engine.images.evict() == []
        await settled(True, True)
        assert set(await engine.images.tracked()) == {image_a, image_b}
        await engine.stop(OWNER, on_b, None)
        assert await job_containers(docker, on_b) == []
        # b's job is gone and b is less recently used than a: removed; a still runs.
        assert await engine.images.evict() == [image_b]
        await settled(True, False)
        assert set(await engine.images.tracked()) == {image_a}
        await engine.stop(OWNER, on_a, None)
        assert await present(docker, operators)
    finally:
        await forget(docker, image_a, image_b)


async def test_without_a_cap_pulled_images_are_tracked_and_kept(
        make_docker_engine: DockerFactory, docker: aiodocker.Docker) -> None:
    await registry_digest()
    (image_a, image_b), _ = await cache_images(docker)
    engine = await make_docker_engine()  # TEST_OPTIONS: no image_cache_bytes
    try:
        for reference in (image_a, image_b):
            name, _, tag = reference.rpartition(":")
            job = spec(docker_environment(), code="echo ok",
                       container={"image": name, "tag": tag, "entrypoint": "sh $ALGO"})
            await engine.start(job)
            assert (await finished(engine, job.job_id, within=60)).detail == ""
        assert set(await engine.images.tracked()) == {image_a, image_b}
        assert await engine.images.evict() == []
        assert await present(docker, image_a) and await present(docker, image_b)
    finally:
        await forget(docker, image_a, image_b)
