"""The ecosystem's own compute example through ocean.js 3.4.6's computeStart, on the
Docker engine (issue #12 must-show): an algorithm asset with image ``ubuntu`` / ``latest``
(built offline in the private test daemon: Debian with nodejs), entrypoint ``node $ALGO``,
pinned by the image's id, against a ``tidegate dev`` with DOCKER_HOST set; then one job
per guarantee of the must-show (the probes of algorithm/docker/, shared checks in
docker_checks.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import (
    DOCKER_EXPIRING_ENV,
    DOCKER_TIGHT_ENV,
    DriverRun,
    FileOrigin,
    step,
)
from tests.e2e.docker_checks import (
    check_absent_image,
    check_expired,
    check_fork_bomb_contained,
    check_memory_reason,
    check_network_fails,
    check_outputs_cut,
    check_writes_outside_outputs_fail,
    job_containers,
)

# The session's Docker driver run (one job per guarantee) happens in the first test.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

PUBLISH = ("encrypt",)
C2D_ORDER = (*PUBLISH, "computeEnvironments", "initializeCompute")
C2D_START = (*C2D_ORDER, "nonce", "computeStart")
C2D_STATUS = (*C2D_START, "computeStatus")
C2D_RESULT = (*C2D_STATUS, "computeResult")


def test_the_algorithm_asset_names_ubuntu_latest_with_node(oceanjs_docker: DriverRun,
                                                             docker_image_id: str) -> None:
    detail = step(oceanjs_docker, "compute.resolve", needs=PUBLISH)
    container = detail["algorithm"]["container"]
    assert (container["image"], container["tag"], container["entrypoint"]) == (
        "ubuntu", "latest", "node $ALGO")
    assert container["checksum"] == docker_image_id


def test_compute_start_runs_the_job_in_the_image_to_completion(
        oceanjs_docker: DriverRun) -> None:
    step(oceanjs_docker, "compute.computeStart", needs=C2D_START)
    detail = step(oceanjs_docker, "compute.computeStatus", needs=C2D_STATUS)
    assert detail["statuses"][-1] == 70
    assert [r["type"] for r in detail["results"]] == ["output", "algorithmLog"]


def test_the_result_is_what_node_computed_in_the_container(oceanjs_docker: DriverRun,
                                                           file_origin: FileOrigin) -> None:
    did = oceanjs_docker.report["steps"]["compute.publishDataset"]["detail"]["did"]
    result = step(oceanjs_docker, "compute.result", needs=C2D_RESULT)
    assert result["text"] == f"{did} 0 {file_origin.sha256} {file_origin.size}\n"
    log = step(oceanjs_docker, "compute.resultLog", needs=C2D_RESULT)["text"]
    assert f"hashed {did}/0: {file_origin.size} bytes" in log
    # The marker only the test daemon's Debian image has, and a non-root uid.
    assert "image marker: debian, uid 65534" in log, log


# --- the Docker engine's guarantees through ocean.js (driver E2E_DOCKER_PROBES) -------
# ocean.js 3.4.6 cannot stop a job (its computeStop signs without the nonce: 401, see
# test_oceanjs.py), so "stop kills the container" is the ocean.py suite's.
PROBES = ("confined", "memory", "fork_bomb", "over_quota", "absent_image", "expiry")


def probe(run: DriverRun, name: str) -> dict[str, Any]:
    return step(run, f"docker.{name}", needs=C2D_RESULT)


def test_probe_network_attempts_fail(oceanjs_docker: DriverRun) -> None:
    check_network_fails(probe(oceanjs_docker, "confined"))


def test_probe_writing_outside_outputs_fails(oceanjs_docker: DriverRun) -> None:
    check_writes_outside_outputs_fail(probe(oceanjs_docker, "confined"))


def test_probe_memory_over_the_limit_ends_the_job_with_a_memory_reason(
        oceanjs_docker: DriverRun) -> None:
    detail = probe(oceanjs_docker, "memory")
    assert detail["environment"] == DOCKER_TIGHT_ENV
    check_memory_reason(detail)


def test_probe_a_fork_bomb_is_contained(oceanjs_docker: DriverRun) -> None:
    check_fork_bomb_contained(probe(oceanjs_docker, "fork_bomb"))


def test_probe_a_checksum_mismatch_is_refused_by_compute_start(
        oceanjs_docker: DriverRun) -> None:
    refusal = probe(oceanjs_docker, "wrong_checksum")["refusal"]
    # computeStart logs the answer and returns null (it does not throw).
    assert (refusal["status"], refusal["value"]) == (400, None), refusal
    body = json.loads(refusal["logged"][-1])
    assert body["code"] == "image_checksum_mismatch", body
    assert "does not match the algorithm's container.checksum" in body["error"], body


def test_probe_an_image_not_in_the_registry_fails_with_32_and_a_clear_detail(
        oceanjs_docker: DriverRun) -> None:
    from tests.docker_daemon import REGISTRY

    check_absent_image(probe(oceanjs_docker, "absent_image"), REGISTRY)


def test_probe_outputs_over_the_quota_are_cut_with_a_reason(oceanjs_docker: DriverRun) -> None:
    detail = probe(oceanjs_docker, "over_quota")
    assert detail["environment"] == DOCKER_TIGHT_ENV
    check_outputs_cut(detail)


def test_probe_results_disappear_after_storage_expiry(oceanjs_docker: DriverRun,
                                                      file_origin: FileOrigin) -> None:
    detail = probe(oceanjs_docker, "expiry")
    assert detail["environment"] == DOCKER_EXPIRING_ENV
    check_expired(detail, file_origin.sha256, file_origin.size)
    assert detail["resultAfter"] == 404, detail


def test_probe_no_container_is_left_after_any_job(oceanjs_docker: DriverRun) -> None:
    job_ids = [probe(oceanjs_docker, name)["job_id"] for name in PROBES]
    job_ids.append(step(oceanjs_docker, "compute.computeStart", needs=C2D_START)["jobId"])
    assert job_containers(*job_ids) == []
