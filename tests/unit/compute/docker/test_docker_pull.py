"""Pulling from the local test registry: by digest, pinned by the registry's digest."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import aiodocker
import httpx
import pytest
from aiodocker.exceptions import DockerError

from tests.docker_daemon import PRIVATE_CREDENTIALS, PRIVATE_REGISTRY, REGISTRY
from tests.unit.compute.conftest import finished, result_bytes, spec
from tests.unit.compute.docker.conftest import TEST_OPTIONS, DockerFactory, docker_environment
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
