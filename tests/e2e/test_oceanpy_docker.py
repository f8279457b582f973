"""ocean.py 3.1.2's compute flow on Tidegate's Docker engine (issue #12 must-show).

A ``tidegate dev`` with DOCKER_HOST (the private test daemon, real chain), and ocean.py's
own compute API (``ocean.compute.start`` / ``status`` / ``result`` / ``stop``) driven by
oceanpy/docker_flow.py: one job per guarantee, each algorithm published by ocean.py in
``ubuntu:latest`` (the test daemon's offline Debian with python3) pinned by its id. The
daemon itself is asked for leftover containers and volumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import (
    DOCKER_EXPIRING_ENV,
    DOCKER_FREE_ENV,
    DOCKER_TIGHT_ENV,
    DriverRun,
    FileOrigin,
    step,
)
from tests.e2e.docker_checks import (
    UID,
    check_absent_image,
    check_expired,
    check_fork_bomb_contained,
    check_memory_reason,
    check_network_fails,
    check_outputs_cut,
    check_writes_outside_outputs_fail,
    daemon_volumes,
    job_containers,
)

# The session's Docker driver run (one job per guarantee) happens in the first test.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

PUBLISH = ("encrypt", "fileinfo")
C2D = (*PUBLISH, "computeEnvironments", "initializeCompute", "nonce", "computeStart",
       "computeStatus", "computeResult")
JOB_STEPS = ("marker", "confined", "memory", "fork_bomb", "over_quota", "absent_image",
             "stop", "expiry")


@dataclass(frozen=True)
class DockerRun:
    run: DriverRun
    volumes_before: frozenset[str]


@pytest.fixture(scope="module")
def docker_run(request: pytest.FixtureRequest, docker_image_id: str) -> DockerRun:
    before = daemon_volumes()
    return DockerRun(request.getfixturevalue("oceanpy_docker"), before)


def job(docker_run: DockerRun, name: str) -> dict[str, Any]:
    return step(docker_run.run, f"docker.{name}", needs=C2D)


def test_the_algorithms_are_published_in_the_debian_image_pinned_by_its_id(
        docker_run: DockerRun, docker_image_id: str) -> None:
    published = step(docker_run.run, "docker.publish_algorithms", needs=PUBLISH)
    container = published["hash"]["container"]
    assert container == {"entrypoint": "python3 $ALGO", "image": "ubuntu", "tag": "latest",
                         "checksum": docker_image_id}
    environments = step(docker_run.run, "docker.environments", needs=("computeEnvironments",))
    assert environments["free"] == DOCKER_FREE_ENV
    assert {DOCKER_FREE_ENV, DOCKER_TIGHT_ENV, DOCKER_EXPIRING_ENV} <= set(environments["ids"])


def test_a_job_runs_inside_the_named_image_as_non_root(
        docker_run: DockerRun, file_origin: FileOrigin) -> None:
    detail = job(docker_run, "marker")
    assert detail["job"]["status"] == 70 and detail["job"]["detail"] == "", detail["job"]
    did = step(docker_run.run, "docker.publish_dataset")["did"]
    assert detail["results"]["result.txt"] == f"{did} 0 {file_origin.sha256} {file_origin.size}\n"
    # /etc/tidegate-test-image exists only in the test daemon's images.
    assert f"image marker: debian, uid {UID}" in detail["results"]["log"], detail["results"]


def test_network_attempts_fail(docker_run: DockerRun) -> None:
    check_network_fails(job(docker_run, "confined"))


def test_writing_outside_outputs_fails(docker_run: DockerRun) -> None:
    check_writes_outside_outputs_fail(job(docker_run, "confined"))


def test_memory_over_the_limit_ends_the_job_with_a_memory_reason(docker_run: DockerRun) -> None:
    detail = job(docker_run, "memory")
    assert detail["environment"] == DOCKER_TIGHT_ENV
    check_memory_reason(detail)


def test_a_fork_bomb_is_contained(docker_run: DockerRun) -> None:
    check_fork_bomb_contained(job(docker_run, "fork_bomb"))


def test_a_checksum_mismatch_is_refused(docker_run: DockerRun) -> None:
    detail = step(docker_run.run, "docker.wrong_checksum", needs=C2D)
    # ocean.py raises on a 400 with the answer's "error" only (check_response).
    assert detail["raised"] == "DataProviderException", detail
    assert detail["message"].startswith(
        "computeStartEndpoint failed: The image ubuntu:latest does not match the "
        "algorithm's container.checksum"), detail


def test_an_image_not_in_the_registry_fails_with_32_and_a_clear_detail(
        docker_run: DockerRun) -> None:
    from tests.docker_daemon import REGISTRY

    detail = job(docker_run, "absent_image")
    check_absent_image(detail, REGISTRY)
    assert detail["job"]["ok"] is False  # ocean.py's own reading of 31 / 32


def test_outputs_over_the_quota_are_cut_with_a_reason(docker_run: DockerRun) -> None:
    detail = job(docker_run, "over_quota")
    assert detail["environment"] == DOCKER_TIGHT_ENV
    check_outputs_cut(detail)


def test_stop_kills_the_container(docker_run: DockerRun) -> None:
    """The algorithm sleeps 300 s: it ends within the driver's wait only if stop killed
    it; and the daemon has no container of the job afterwards."""
    detail = job(docker_run, "stop")
    assert detail["running"]["status"] == 40 and "started" in detail["log_while_running"]
    record = detail["job"]
    assert (record["status"], record["statusText"]) == (70, "Job stopped"), record
    assert "never stopped" not in detail["results"]["log"], detail["results"]
    assert job_containers(detail["job_id"]) == []


def test_no_container_or_volume_is_left_after_any_job(docker_run: DockerRun) -> None:
    job_ids = tuple(job(docker_run, name)["job_id"] for name in JOB_STEPS)
    assert len(set(job_ids)) == len(JOB_STEPS)
    assert job_containers(*job_ids) == []
    # The engine makes no named volume and removes anonymous ones with the container.
    left = daemon_volumes() - docker_run.volumes_before
    assert left == frozenset(), left


def test_results_disappear_after_storage_expiry(docker_run: DockerRun,
                                                file_origin: FileOrigin) -> None:
    detail = job(docker_run, "expiry")
    assert detail["environment"] == DOCKER_EXPIRING_ENV
    check_expired(detail, file_origin.sha256, file_origin.size)
    assert detail["result_after"]["type"] == "DataProviderException", detail["result_after"]

