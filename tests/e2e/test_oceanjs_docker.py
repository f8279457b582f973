"""The ecosystem's own compute example through ocean.js 3.4.6's computeStart, on the
Docker engine (issue #12 must-show): an algorithm asset with image ``ubuntu`` / ``latest``
(built offline in the private test daemon: Debian with nodejs), entrypoint ``node $ALGO``,
pinned by the image's id, against a ``tidegate dev`` with DOCKER_HOST set.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DriverRun, FileOrigin, step

pytestmark = pytest.mark.e2e

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
