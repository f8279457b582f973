"""ocean.js 3.4.6, the real client (ethers v5), against Tidegate (driver: oceanjs/driver.js).

Each test checks one step of the driver's single session run. Tests whose name
starts with ``test_compat_`` pin a behaviour listed in docs/compatibility.md.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import DevStack, DriverRun, FileOrigin, step

pytestmark = pytest.mark.e2e

PUBLISH = ("encrypt",)
ORDER = (*PUBLISH, "initialize")
DOWNLOAD = (*ORDER, "nonce", "download")
C2D_ORDER = (*PUBLISH, "computeEnvironments", "initializeCompute")
C2D_START = (*C2D_ORDER, "nonce", "computeStart")
C2D_STATUS = (*C2D_START, "computeStatus")
C2D_RESULT = (*C2D_STATUS, "computeResult")


def test_client_versions(oceanjs: DriverRun) -> None:
    assert oceanjs.report["client"]["@oceanprotocol/lib"] == "3.4.6"
    assert oceanjs.report["client"]["ethers"].endswith("5.7.2")


def test_get_endpoints_and_is_valid_provider(oceanjs: DriverRun) -> None:
    detail = step(oceanjs, "getEndpoints")
    assert "8996" in detail["providerAddresses"]
    assert {"nonce", "encrypt"} <= set(detail["services"])


def test_compat_nonce_get_with_json_content_type_and_no_body(oceanjs: DriverRun) -> None:
    """ocean.js sends Content-Type: application/json on GETs without a body and does
    Number(nonce) + 1: the nonce must be a JSON integer."""
    nonce = step(oceanjs, "getNonce", needs=("nonce",))["nonce"]
    # A fresh address: 1, as the reference answers (ocean.js's own tests assert > 0).
    assert isinstance(nonce, int) and nonce == 1


def test_compat_encrypt_json_as_octet_stream_answers_hex_text(oceanjs: DriverRun) -> None:
    """ocean.js posts JSON.stringify(data) as application/octet-stream and stores
    response.text() without looking at the status."""
    assert step(oceanjs, "encrypt", needs=("encrypt",))["length"] > 2


def test_get_file_info(oceanjs: DriverRun) -> None:
    files = step(oceanjs, "getFileInfo", needs=("fileinfo",))["files"]
    assert len(files) == 1 and files[0]["valid"] is True


def test_create_asset_with_oceanjs_helper(oceanjs: DriverRun) -> None:
    """createAsset: /encrypt of files and DDO (JSON, flags 2), ddo/validate, setMetadata."""
    assert step(oceanjs, "publish", needs=PUBLISH)["did"].startswith("did:op:")


def test_wait_for_indexer_resolves(oceanjs: DriverRun) -> None:
    detail = step(oceanjs, "resolve", needs=PUBLISH)
    assert detail["event"]["tx"].startswith("0x")


def test_compat_wait_for_indexer_txid_compares_a_field_aquarius_never_had(
    oceanjs: DriverRun,
) -> None:
    """ocean.js 3.4.6 waitForIndexer(did, txid) compares ddo.event.txid; Aquarius and
    Tidegate publish the transaction as event.tx. Client bug, tolerated: Tidegate keeps
    Aquarius' layout, and callers wait without a txid."""
    detail = step(oceanjs, "waitForIndexer_txid", needs=PUBLISH)
    assert "tx" in detail["eventKeys"]
    assert detail["matched"] is ("txid" in detail["eventKeys"])


def test_compat_aquarius_resolve_metadata_and_query_by_es_id(oceanjs: DriverRun) -> None:
    """Aquarius.resolve / getAssetMetadata / querySearch; market-style filters use the
    Elasticsearch document id (``_id``), which Aquarius sets to the DID."""
    detail = step(oceanjs, "querySearch", needs=PUBLISH)
    assert detail["byId"] == detail["byNft"]


def test_check_did_files(oceanjs: DriverRun) -> None:
    files = step(oceanjs, "checkDidFiles", needs=(*PUBLISH, "fileinfo"))["files"]
    assert len(files) == 1 and files[0]["valid"] is True


def test_compat_initialize_with_json_content_type_answers_exactly_200(oceanjs: DriverRun) -> None:
    """ocean.js's initialize accepts only status 200 and reads providerFee."""
    fee = step(oceanjs, "initialize", needs=ORDER)["initialize"]["providerFee"]
    assert int(fee["providerFeeAmount"]) == 0


def test_start_order_with_datatoken_helper(oceanjs: DriverRun) -> None:
    assert step(oceanjs, "startOrder", needs=ORDER)["orderTx"].startswith("0x")


def test_compat_download_url_signature_v27_and_content_disposition(
    oceanjs: DriverRun, file_origin: FileOrigin
) -> None:
    """getDownloadUrl signs did + nonce with ethers (v = 27/28); downloadFile reads the
    name with /attachment;filename=(.+)/."""
    detail = step(oceanjs, "download", needs=DOWNLOAD)
    assert detail["sha256"] == file_origin.sha256
    assert detail["filename"] == "data.bin"


def test_redownload_with_the_same_order(oceanjs: DriverRun, file_origin: FileOrigin) -> None:
    assert step(oceanjs, "redownload", needs=DOWNLOAD)["sha256"] == file_origin.sha256


def _expected_output(oceanjs: DriverRun, origin: FileOrigin) -> str:
    """What the algorithm (algorithm/hash_inputs.py) writes for the published file."""
    did = oceanjs.report["steps"]["compute.publishDataset"]["detail"]["did"]
    return f"{did} 0 {origin.sha256} {origin.size}\n"


def test_compute_publish_algorithm_and_dataset(oceanjs: DriverRun) -> None:
    """createAsset for an algorithm (metadata.algorithm.container python / 3.11) and for
    a dataset whose only service is a compute service trusting the publisher."""
    assert step(oceanjs, "compute.publishAlgorithm", needs=PUBLISH)["did"].startswith("did:op:")
    assert step(oceanjs, "compute.publishDataset", needs=PUBLISH)["did"].startswith("did:op:")
    detail = step(oceanjs, "compute.resolve", needs=PUBLISH)
    assert detail["algorithm"]["container"]["image"] == "python"
    assert detail["datasetService"] == "compute"


def test_get_compute_environments(oceanjs: DriverRun, dev_stack: DevStack) -> None:
    """getComputeEnvironments returns the reply as-is: an object keyed by chain id."""
    detail = step(oceanjs, "compute.getComputeEnvironments", needs=("computeEnvironments",))
    root = httpx.get(dev_stack.provider_url + "/", timeout=10).json()
    assert detail["chains"] == ["8996"]
    assert detail["ids"] == ["tidegate-local-free"]
    assert detail["env"]["consumerAddress"] == root["providerAddresses"]["8996"]


def test_initialize_compute(oceanjs: DriverRun) -> None:
    """initializeCompute (unsigned in ocean.js 3.x): a providerFee for the dataset and
    for the algorithm, in request order; the free environment costs nothing."""
    quotes = step(oceanjs, "compute.initializeCompute", needs=C2D_ORDER)["initializeCompute"]
    assert len(quotes["datasets"]) == 1
    for quote in (quotes["datasets"][0], quotes["algorithm"]):
        assert int(quote["providerFee"]["providerFeeAmount"]) == 0
        assert quote["providerFee"]["providerData"].startswith("0x")


def test_start_order_for_the_environment_consumer(oceanjs: DriverRun) -> None:
    """Datatoken.startOrder for the dataset and the algorithm, consumer = the env's
    consumerAddress, with the quoted provider fees."""
    detail = step(oceanjs, "compute.startOrder", needs=C2D_ORDER)
    assert detail["datasetTx"].startswith("0x") and detail["algorithmTx"].startswith("0x")


def test_compute_start(oceanjs: DriverRun) -> None:
    """computeStart signs consumerAddress + dataset.documentId + nonce (ethers, v 27/28)."""
    detail = step(oceanjs, "compute.computeStart", needs=C2D_START)
    order = step(oceanjs, "compute.startOrder", needs=C2D_ORDER)
    assert detail["jobId"]
    assert detail["agreementId"] == order["datasetTx"]


def test_compute_status_until_done(oceanjs: DriverRun) -> None:
    """computeStatus (unsigned GET, JSON content type, no body) until status 70."""
    detail = step(oceanjs, "compute.computeStatus", needs=C2D_STATUS)
    assert detail["statuses"][-1] == 70
    assert [r["type"] for r in detail["results"]] == ["output", "algorithmLog"]


def test_compute_result_url_and_fetch(oceanjs: DriverRun, file_origin: FileOrigin) -> None:
    """getComputeResultUrl signs consumerAddress + jobId + index + nonce; the GET returns
    the bytes the algorithm wrote, named by Content-Disposition."""
    detail = step(oceanjs, "compute.result", needs=C2D_RESULT)
    assert detail["text"] == _expected_output(oceanjs, file_origin)
    assert detail["disposition"] == "attachment;filename=result.txt"


def test_compute_result_log(oceanjs: DriverRun, file_origin: FileOrigin) -> None:
    detail = step(oceanjs, "compute.resultLog", needs=C2D_RESULT)
    did = oceanjs.report["steps"]["compute.publishDataset"]["detail"]["did"]
    assert f"hashed {did}/0: {file_origin.size} bytes" in detail["text"]
    assert detail["disposition"] == "attachment;filename=algorithm.log"


def test_compat_compute_stop_signed_without_nonce_is_refused(oceanjs: DriverRun) -> None:
    """ocean.js >= 3.3.3 computeStop signs consumerAddress + jobId only (no documentId,
    no nonce) and sends no documentId; Tidegate checks consumerAddress + jobId +
    documentId + nonce like the reference: 401 invalid_signature, ocean.js throws, and
    the job runs on to completion untouched."""
    detail = step(oceanjs, "compute.computeStop", needs=(*C2D_START, "computeStop"))
    assert detail["threw"] is True
    assert detail["status"] == 401
    assert detail["body"]["code"] == "invalid_signature"
    assert detail["sent"] == ["agreementId", "consumerAddress", "jobId", "nonce", "signature"]
    status = step(oceanjs, "compute.computeStatus", needs=C2D_STATUS)
    assert (status["statuses"][-1], status["stopreq"]) == (70, 0)


def test_compat_compute_delete_without_nonce_is_refused(oceanjs: DriverRun) -> None:
    """ocean.js 3.x computeDelete signs consumerAddress + jobId + documentId + nonce but
    sends no nonce: Tidegate needs one (as the reference): 400 validation_error, ocean.js
    throws, and the job and its results stay."""
    detail = step(oceanjs, "compute.computeDelete", needs=(*C2D_RESULT, "computeDelete"))
    job_id = oceanjs.report["steps"]["compute.computeStart"]["detail"]["jobId"]
    assert detail["threw"] is True
    assert detail["status"] == 400
    assert detail["body"]["code"] == "validation_error"
    assert detail["body"]["errors"] == {"nonce": "The nonce field is required."}
    assert detail["sent"] == ["consumerAddress", "documentId", "jobId", "signature"]
    assert detail["jobsAfter"] == [{"jobId": job_id, "status": 70}]


def test_compat_node_signer_personal_sign(oceanjs: DriverRun) -> None:
    """ethers' JsonRpcSigner against the dev chain: eth_accounts lists the unlocked
    barge accounts and signProviderRequest (personal_sign) recovers to the account."""
    detail = step(oceanjs, "nodeSigner.signMessage")
    assert detail["accounts"] >= 10


def test_compat_node_signer_orders_and_downloads(oceanjs: DriverRun) -> None:
    """A dApp signing through the node: startOrder by eth_sendTransaction, then
    getDownloadUrl signed by personal_sign, and the bytes arrive intact."""
    detail = step(oceanjs, "nodeSigner.download", needs=DOWNLOAD)
    assert detail["orderTx"].startswith("0x") and detail["bytes"] > 0


def test_compat_ddo_indexer_fields_for_a_free_asset(oceanjs: DriverRun) -> None:
    """Aquarius v4's indexer fields on a dispenser asset published by createAsset."""
    detail = step(oceanjs, "free.resolve", needs=("encrypt",))
    [datatoken] = detail["datatokens"]
    assert datatoken["address"].startswith("0x") and datatoken["symbol"]
    assert detail["stats"]["orders"] == 0 and detail["stats"]["price"]["value"] == 0
    assert detail["nft"]["symbol"] == "TGFREE"


def test_compat_order_asset_reads_datatokens_and_stats(oceanjs: DriverRun) -> None:
    """orderAsset takes the datatoken from ddo.datatokens[0] and the market fee token
    from ddo.stats.price.tokenAddress, dispenses and orders; the download then works."""
    detail = step(oceanjs, "free.orderAsset", needs=("encrypt", "initialize", "download"))
    assert detail["orderTx"].startswith("0x") and detail["bytes"] > 0
