"""ocean.js 8.6.2, the real client of Ocean Node's protocol (ethers 6), against the same
Tidegate as ocean.py 3.1.2 and ocean.js 3.4.6 (driver: oceanjs8/driver.mjs).

The access flow over HTTP on the dev demo asset: isValidProvider, nonce, signed encrypt,
resolve, checkDidFiles, getFileInfo, initialize, Datatoken.startOrder, getDownloadUrl +
downloadFile (signed address + nonce + "download"), a replayed URL, auth token create,
its use and invalidation, getNodeStatus (directCommand). Publishing as ocean.js 8's
docs do (a 4.1.0 DDO and a 5.0.0 one, encrypted, validated, setMetadata), resolved
through its Aquarius class from Tidegate's indexer, then fileInfo, initialize, order and
download of each.
Compute v2: getComputeEnvironments
(the v2 shape on the classic path), freeComputeStart on the consumer's own file with a
raw algorithm, computeStatus until finished, getComputeResultUrl + download of the
output, then a second, long job: computeStreamableLogs while it runs, computeStop.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    E2E,
    SETUP_HINT,
    DevStack,
    DriverRun,
    FileOrigin,
    _common_env,
    _run_driver,
    step,
)

pytestmark = pytest.mark.e2e

OCEANJS8 = E2E / "oceanjs8"
#: The dev demo's consumer (barge account 2) holds the demo asset's datatokens.
DEMO_CONSUMER = 2
#: Publishes the ocean.js 8 assets (the dev demo's publisher, idle once dev has started).
DEMO_PUBLISHER = 1


@pytest.fixture(scope="session")
def oceanjs8(request: pytest.FixtureRequest, file_origin: FileOrigin, keys: dict[int, str],
             tmp_path_factory: pytest.TempPathFactory) -> DriverRun:
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node is not installed: the ocean.js 8 client cannot run ({SETUP_HINT})")
    if not (OCEANJS8 / "node_modules" / "@oceanprotocol" / "lib").exists():
        pytest.skip(f"the ocean.js 8 client (tests/e2e/oceanjs8/node_modules) is missing: "
                    f"{SETUP_HINT}")
    dev_stack: DevStack = request.getfixturevalue("dev_stack")
    out = Path(tmp_path_factory.mktemp("oceanjs8")) / "report.json"
    env = {**_common_env(dev_stack, file_origin), "E2E_DID": dev_stack.demo_did,
           "E2E_CONSUMER_KEY": keys[DEMO_CONSUMER], "E2E_PUBLISHER_KEY": keys[DEMO_PUBLISHER]}
    return _run_driver("the ocean.js 8 driver", [node, str(OCEANJS8 / "driver.mjs"), str(out)],
                       env, out, dev_stack)


def test_client_versions(oceanjs8: DriverRun) -> None:
    assert oceanjs8.report["client"]["lib"] == "8.6.2"
    assert oceanjs8.report["client"]["ethers"] == "6.17.0"


def test_is_valid_provider_and_nonce(oceanjs8: DriverRun) -> None:
    assert step(oceanjs8, "is_valid_provider")["ok"] is True
    assert isinstance(step(oceanjs8, "get_nonce")["nonce"], int)


def test_root_document_as_ocean_js8_reads_it(oceanjs8: DriverRun) -> None:
    """getEndpoints: serviceEndpoints (its names), providerAddress (isValidProvider) and
    nodePublicKey (eciesencrypt's PublicKey.fromHex), beside the classic keys."""
    root = step(oceanjs8, "root_document")
    assert root["has_provider_addresses"] is True
    assert root["provider_address"] == root["provider_addresses"]["8996"]
    assert root["node_public_key_parses"] is True
    assert {"nonce", "encrypt", "fileinfo", "initialize", "download", "directCommand",
            "generateAuthToken", "invalidateAuthToken"} <= set(root["services"])


@pytest.mark.parametrize("version", ["410", "500"])
def test_publish_as_the_docs_do(oceanjs8: DriverRun, version: str) -> None:
    detail = step(oceanjs8, f"publish_{version}", ("encrypt",))
    assert detail["status"] == 1
    assert detail["did"].startswith("did:op:" if version == "410" else "did:ope:")
    assert detail["hash"].startswith("0x") and len(detail["hash"]) == 66


def test_resolve_a_410_ddo_as_aquarius_v4_serves_it(oceanjs8: DriverRun) -> None:
    detail = step(oceanjs8, "wait_for_indexer_410")
    assert detail["metadata_equal"] is True
    assert detail["datatokens"][0]["symbol"]
    # A classic version: Aquarius v4's fields, nothing of Ocean Node's.
    assert detail["has_indexed_metadata"] is False
    assert set(detail["event"]) == {"tx", "block", "from", "contract", "datetime"}
    assert detail["nft_state"] == 0


def test_resolve_a_500_ddo_with_indexed_metadata(oceanjs8: DriverRun) -> None:
    detail = step(oceanjs8, "wait_for_indexer_500")  # waitForIndexer matched the txid
    assert detail["subject_metadata_equal"] is True
    assert detail["datatokens"][0]["symbol"]
    indexed = detail["indexed"]
    assert set(indexed) == {"nft", "event", "purgatory", "stats"}
    assert indexed["nft"]["state"] == 0 and indexed["purgatory"] == {"state": False}
    [stat] = indexed["stats"]
    assert stat["prices"][0]["type"] == "dispenser"
    assert not {"nft", "event", "stats", "datatokens"} & set(detail["top_keys"])


def test_query_a_500_ddo(oceanjs8: DriverRun) -> None:
    detail = step(oceanjs8, "query_500")
    did = step(oceanjs8, "wait_for_indexer_500")["id"]
    assert detail["by_id"] == [did]
    assert detail["by_name"] == [did]


@pytest.mark.parametrize("version", ["410", "500"])
def test_consume_what_was_published(oceanjs8: DriverRun, file_origin: FileOrigin,
                                    version: str) -> None:
    detail = step(oceanjs8, f"consume_{version}", ("fileinfo", "initialize", "download"))
    assert detail["valid"] == [True]
    assert detail["order_status"] == 1
    assert detail["sha256"] == file_origin.sha256


def test_signed_encrypt_advances_the_nonce(oceanjs8: DriverRun) -> None:
    detail = step(oceanjs8, "encrypt", ("encrypt",))
    assert detail["length"] > 2 + 2 * 97
    assert detail["nonce_after"] == step(oceanjs8, "get_nonce")["nonce"] + 1


def test_file_info(oceanjs8: DriverRun, file_origin: FileOrigin) -> None:
    files = step(oceanjs8, "check_did_files", ("fileinfo",))["files"]
    assert [f["valid"] for f in files] == [True]
    files = step(oceanjs8, "get_file_info", ("fileinfo",))["files"]
    assert files[0]["valid"] is True and files[0]["contentLength"] == str(file_origin.size)


def test_initialize_and_order(oceanjs8: DriverRun) -> None:
    assert step(oceanjs8, "initialize", ("initialize",))["keys"] == [
        "computeAddress", "datatoken", "nonce", "providerFee"]
    assert step(oceanjs8, "start_order")["status"] == 1


def test_signed_download(oceanjs8: DriverRun) -> None:
    detail = step(oceanjs8, "download", ("download", "nonce"))
    assert detail["signed"] is True and detail["size"] > 0
    assert detail["filename"]
    replay = step(oceanjs8, "replayed_download_url_is_refused", ("download",))
    assert (replay["first"], replay["second"], replay["body"]["code"]) == (
        200, 401, "nonce_too_low")


def test_auth_token(oceanjs8: DriverRun) -> None:
    assert step(oceanjs8, "generate_auth_token", ("generateAuthToken",))["parts"] == 3
    used = step(oceanjs8, "download_with_auth_token", ("download",))
    assert used["status"] == 200 and used["unsigned"] is True
    assert used["sha256"] == step(oceanjs8, "download")["sha256"]
    gone = step(oceanjs8, "invalidate_auth_token", ("invalidateAuthToken",))
    assert gone["answer"] == {"success": True}
    assert (gone["after"], gone["body"]["code"]) == (401, "token_deleted")


def test_node_status(oceanjs8: DriverRun) -> None:
    detail = step(oceanjs8, "node_status", ("directCommand",))
    assert detail["http"] is True
    assert detail["provider"] == [{"chainId": "8996", "network": "8996"}]


def test_compute_environments_v2_shape(oceanjs8: DriverRun) -> None:
    detail = step(oceanjs8, "compute_environments", ("computeEnvironments",))
    assert detail["resources"] == ["cpu", "ram", "disk", "gpu"]
    assert detail["fees"] == ["8996"] and detail["free"]["maxJobs"] >= 1


def test_free_compute_result(oceanjs8: DriverRun, file_origin: FileOrigin) -> None:
    started = step(oceanjs8, "free_compute_start", ("freeCompute",))
    assert started["isFree"] is True
    done = step(oceanjs8, "compute_status_until_finished", ("computeStatus",))
    assert (done["status"], done["statusText"]) == (70, "Job finished")
    assert sorted(done["results"]) == ["algorithmLog", "output"]
    result = step(oceanjs8, "compute_result_download", ("computeResult",))
    assert result["status"] == 200 and result["digest"] == file_origin.sha256
    assert result["log"].startswith(f"hashed {file_origin.size}")


def test_streamable_logs_and_stop(oceanjs8: DriverRun) -> None:
    assert step(oceanjs8, "long_free_job_running", ("freeCompute",))["status"] == 40
    logs = step(oceanjs8, "compute_streamable_logs", ("computeStreamableLogs",))
    assert logs["head"][:2] == ["tick 0", "tick 1"]
    stopped = step(oceanjs8, "compute_stop", ("computeStop",))
    assert stopped["stopRequested"] is True
    assert (stopped["status"], stopped["statusText"]) == (70, "Job stopped")
