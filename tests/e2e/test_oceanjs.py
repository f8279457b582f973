"""ocean.js 3.4.6, the real client (ethers v5), against Tidegate (driver: oceanjs/driver.js).

Each test checks one step of the driver's single session run. Tests whose name
starts with ``test_compat_`` pin a behaviour listed in docs/compatibility.md.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DriverRun, FileOrigin, step

pytestmark = pytest.mark.e2e

PUBLISH = ("encrypt",)
ORDER = (*PUBLISH, "initialize")
DOWNLOAD = (*ORDER, "nonce", "download")


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
    assert isinstance(step(oceanjs, "getNonce", needs=("nonce",))["nonce"], int)


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


def test_oceanjs_compute() -> None:
    pytest.skip("compute: not implemented yet")
