"""ocean.py 3.1.2, the real client, against Tidegate (driver: oceanpy/driver.py).

Each test checks one step of the driver's single session run. Tests whose name
starts with ``test_compat_`` pin a behaviour listed in docs/compatibility.md.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import DevStack, DriverRun, FileOrigin, step

pytestmark = pytest.mark.e2e

FLOWS = ["plain", "fixed_rate", "free"]
# Endpoints each step needs (its own and those of the steps before it).
PUBLISH = ("encrypt",)
FILEINFO = (*PUBLISH, "fileinfo")
PAY = (*FILEINFO, "initialize")
DOWNLOAD = (*PAY, "nonce", "download")
# Compute: publish (the algorithm's trusted checksums come from fileinfo), then the
# compute endpoints ocean.py calls.
C2D_PUBLISH = (*PUBLISH, "fileinfo")
C2D_PAY = (*C2D_PUBLISH, "computeEnvironments", "initializeCompute")
C2D_START = (*C2D_PAY, "nonce", "computeStart")
C2D_STATUS = (*C2D_START, "computeStatus")
C2D_RESULT = (*C2D_STATUS, "computeResult")


def test_client_imports(oceanpy: DriverRun) -> None:
    client = step(oceanpy, "import")
    assert client["ocean-lib"] == "3.1.2"
    assert client["web3"] == "6.11.4"
    # On Python >= 3.11 enforce_typing 1.0.0.post1 breaks every `Any` parameter; the
    # venv then carries our fix (tests/e2e/oceanpy/enforce_typing_fix.py).
    major, minor = (int(x) for x in client["python"].split(".")[:2])
    assert client["enforce_typing_fix"] is ((major, minor) >= (3, 11))


def test_ocean_accepts_tidegate_as_metadata_cache(oceanpy: DriverRun) -> None:
    """Ocean(config) with METADATA_CACHE_URI = PROVIDER_URL = Tidegate (GET / is 200)."""
    detail = step(oceanpy, "ocean")
    assert detail == {"chain_id": 8996, "network": "development"}


def test_compat_provider_root_at_host_root_with_provider_addresses(oceanpy: DriverRun) -> None:
    """ocean.py's get_root_uri GETs scheme://host[:port] and needs providerAddresses."""
    detail = step(oceanpy, "provider_root")
    assert detail["provider_address"].startswith("0x")
    assert {"nonce", "encrypt"} <= set(detail["service_endpoints"])


def test_compat_provider_address_for_the_chain(oceanpy: DriverRun, dev_stack: DevStack) -> None:
    """get_provider_address(url, chain_id) prefers a singular providerAddress (with an
    "older provider" warning) over providerAddresses[chain_id]: both must agree."""
    detail = step(oceanpy, "provider_root")
    root = httpx.get(dev_stack.provider_url + "/", timeout=10).json()
    assert detail["provider_address"] == root["providerAddresses"]["8996"]


def test_fund_consumer_with_oceanpy_mint_fake_ocean(oceanpy: DriverRun) -> None:
    step(oceanpy, "fund")


def test_compat_ddo_not_found_uses_aquarius_wording(oceanpy: DriverRun) -> None:
    """Aquarius.ddo_exists looks for "Asset DID <did> not found in Elasticsearch"."""
    assert step(oceanpy, "ddo_exists_unknown") == {"exists": False}


def test_compat_encrypt_lzma_binary_body_answers_201(oceanpy: DriverRun) -> None:
    """DataEncryptor.encrypt posts LZMA bytes (not UTF-8) and accepts only 201."""
    detail = step(oceanpy, "encrypt_lzma", needs=("encrypt",))
    assert detail["status"] == 201
    assert detail["content_type"].startswith("text/plain")


def test_fileinfo_of_a_bare_url_object(oceanpy: DriverRun) -> None:
    """check_single_file_info: POST fileinfo with {type, url, method}."""
    assert step(oceanpy, "fileinfo_url", needs=("fileinfo",)) == {"valid": True}


@pytest.mark.parametrize("flow", FLOWS)
def test_create_url_asset(oceanpy: DriverRun, flow: str) -> None:
    """create_url_asset: ddo/<did> (free?), ddo/validate proof accepted by setMetaData,
    /encrypt (LZMA, flags 3), then wait_for_ddo on Tidegate's Aquarius API."""
    detail = step(oceanpy, f"{flow}.publish", needs=PUBLISH)
    assert detail["did"].startswith("did:op:")


@pytest.mark.parametrize("flow", FLOWS)
def test_resolve_through_tidegate_aquarius_api(oceanpy: DriverRun, flow: str) -> None:
    detail = step(oceanpy, f"{flow}.resolve", needs=PUBLISH)
    assert detail["event_tx"].startswith("0x")


def test_compat_search_with_escaped_colons_and_query(oceanpy: DriverRun) -> None:
    """ocean.assets.search(text) sends an ES query_string with ":" escaped as "\\:"
    (searching for a DID is free text, not a field); ocean.assets.query sends ES JSON."""
    detail = step(oceanpy, "plain.search", needs=PUBLISH)
    assert detail["by_name"] == detail["by_did"] == detail["by_term"]


@pytest.mark.parametrize("flow", FLOWS)
def test_compat_ddo_datatokens_and_stats(oceanpy: DriverRun, flow: str) -> None:
    """ocean.py's DDO carries Aquarius' indexer fields: ddo.datatokens[0] names the
    service's datatoken (address, name, symbol, serviceId); ddo.stats has the order count
    and, for a fixed-rate exchange or a dispenser, the price."""
    detail = step(oceanpy, f"{flow}.datatokens", needs=PUBLISH)
    stats = detail["stats"]
    assert isinstance(stats["orders"], int)
    if flow == "fixed_rate":
        assert stats["price"]["value"] == 3.0 and stats["price"]["tokenSymbol"] == "OCEAN"
    elif flow == "free":
        assert stats["price"]["value"] == 0
    else:
        assert stats["price"] == {}
    assert {"address", "name", "symbol", "state", "owner", "created", "tokenURI"} \
        <= set(detail["nft"])


@pytest.mark.parametrize("flow", FLOWS)
def test_compat_fileinfo_one_entry_per_file(oceanpy: DriverRun, flow: str) -> None:
    """download() loops over len(fileinfo); is_consumable uses any(item["valid"])."""
    files = step(oceanpy, f"{flow}.fileinfo", needs=FILEINFO)["files"]
    assert len(files) == 1 and files[0]["valid"] is True


@pytest.mark.parametrize("flow", FLOWS)
def test_is_consumable(oceanpy: DriverRun, flow: str) -> None:
    assert step(oceanpy, f"{flow}.consumable", needs=FILEINFO) == {"code": 0}


@pytest.mark.parametrize("flow", FLOWS)
def test_compat_access_fee_is_zero_because_oceanpy_approves_no_fee_token(
    oceanpy: DriverRun, flow: str
) -> None:
    """pay_for_access_service never approves the fee token, so a non-zero access
    provider fee would revert its startOrder: the default access fee is 0."""
    fee = step(oceanpy, f"{flow}.initialize", needs=PAY)["initialize"]["providerFee"]
    assert int(fee["providerFeeAmount"]) == 0
    for key in ("providerFeeAddress", "providerFeeToken", "v", "r", "s", "validUntil",
                "providerData"):
        assert key in fee


@pytest.mark.parametrize("flow", FLOWS)
def test_pay_for_access_service(oceanpy: DriverRun, flow: str) -> None:
    """initialize + startOrder (plain), buy from the FRE and order, or dispense and order."""
    assert step(oceanpy, f"{flow}.pay", needs=PAY)["order_tx"].startswith("0x")


@pytest.mark.parametrize("flow", FLOWS)
def test_download_asset_bytes_equal(
    oceanpy: DriverRun, file_origin: FileOrigin, flow: str
) -> None:
    detail = step(oceanpy, f"{flow}.download", needs=DOWNLOAD)
    assert detail["sha256"] == file_origin.sha256
    assert detail["bytes"] == file_origin.size


@pytest.mark.parametrize("flow", FLOWS)
def test_redownload_with_the_same_order_within_timeout(
    oceanpy: DriverRun, file_origin: FileOrigin, flow: str
) -> None:
    detail = step(oceanpy, f"{flow}.redownload", needs=DOWNLOAD)
    assert detail["sha256"] == file_origin.sha256
    assert detail["bytes"] == file_origin.size


def _expected_output(oceanpy: DriverRun, origin: FileOrigin) -> str:
    """What the algorithm (algorithm/hash_inputs.py) writes for the published file."""
    did = oceanpy.report["steps"]["compute.publish_dataset"]["detail"]["did"]
    return f"{did} 0 {origin.sha256} {origin.size}\n"


def test_compute_publish_algorithm_with_oceanpy_metadata(oceanpy: DriverRun) -> None:
    """create_algo_asset: metadata.algorithm with ocean.py's container layout."""
    detail = step(oceanpy, "compute.publish_algorithm", needs=PUBLISH)
    container = detail["algorithm"]["container"]
    assert detail["algorithm"]["language"] == "python"
    assert (container["entrypoint"], container["image"], container["tag"]) == (
        "python $ALGO", "python", "3.11")
    assert container["checksum"].startswith("sha256:")


def test_compute_publish_dataset_trusting_the_algorithm(oceanpy: DriverRun) -> None:
    """create_url_asset(compute_values=...) with generate_trusted_algorithms(): the
    files checksum comes from Tidegate's fileinfo (with checksum), the container
    checksum is sha256(entrypoint + checksum)."""
    detail = step(oceanpy, "compute.publish_dataset", needs=C2D_PUBLISH)
    algorithm = step(oceanpy, "compute.publish_algorithm", needs=PUBLISH)
    assert detail["service_types"] == ["access", "compute"]
    assert detail["trusted"]["did"] == algorithm["did"]
    assert len(detail["trusted"]["filesChecksum"]) == 64
    assert len(detail["trusted"]["containerSectionChecksum"]) == 64


def test_compat_c2d_environments_keyed_by_chain_with_a_free_env(
    oceanpy: DriverRun, dev_stack: DevStack
) -> None:
    """get_c2d_environments reads reply[str(chain_id)]; get_free_c2d_environment picks the
    first env with float(priceMin) == 0; its consumerAddress is the provider's."""
    detail = step(oceanpy, "compute.environments", needs=("computeEnvironments",))
    root = httpx.get(dev_stack.provider_url + "/", timeout=10).json()
    assert detail["ids"] == ["tidegate-local-free"]
    assert detail["free"]["id"] == "tidegate-local-free"
    assert float(detail["free"]["priceMin"]) == 0
    assert detail["free"]["consumerAddress"] == root["providerAddresses"]["8996"]


def test_pay_for_compute_service(oceanpy: DriverRun) -> None:
    """initializeCompute (consumerAddress = the env's), then startOrder for the dataset's
    compute service and the algorithm's access service, consumer = the env's address."""
    detail = step(oceanpy, "compute.pay", needs=C2D_PAY)
    assert detail["dataset_tx"].startswith("0x") and detail["algorithm_tx"].startswith("0x")
    assert detail["dataset_tx"] != detail["algorithm_tx"]


def test_compute_start(oceanpy: DriverRun) -> None:
    """compute.start: signed consumerAddress + did + nonce; ocean.py always sends
    ``additionalInputs: []`` (a client bug: it never fills it), which Tidegate ignores."""
    assert len(step(oceanpy, "compute.start", needs=C2D_START)["job_id"]) >= 8


def test_compute_status_until_done(oceanpy: DriverRun) -> None:
    detail = step(oceanpy, "compute.status", needs=C2D_STATUS)
    assert detail["statuses"][-1] == 70
    assert detail["statusText"] == "Job completed"
    assert [r["type"] for r in detail["results"]] == ["output", "algorithmLog"]
    assert [r["index"] for r in detail["results"]] == [0, 1]


def test_compute_result_is_what_the_algorithm_wrote(
    oceanpy: DriverRun, file_origin: FileOrigin
) -> None:
    """compute.result(index of the output): the bytes the algorithm wrote, which hold
    the sha256 of the dataset file as the algorithm read it in the sandbox."""
    detail = step(oceanpy, "compute.result", needs=C2D_RESULT)
    assert detail["output"] == _expected_output(oceanpy, file_origin)


def test_compat_result_logs_fetch_results_by_list_position(
    oceanpy: DriverRun, file_origin: FileOrigin
) -> None:
    """compute_job_result_logs asks computeResult for index i = the position in the
    status' results list (not results[i].index): Tidegate numbers results by position."""
    detail = step(oceanpy, "compute.result_logs", needs=C2D_RESULT)
    did = oceanpy.report["steps"]["compute.publish_dataset"]["detail"]["did"]
    assert detail["outputs"] == [_expected_output(oceanpy, file_origin)]
    assert len(detail["logs"]) == 1
    assert f"hashed {did}/0: {file_origin.size} bytes" in detail["logs"][0]


def test_compute_stop_of_a_finished_job(oceanpy: DriverRun) -> None:
    """compute.stop: PUT with the query, signed consumerAddress + jobId + did + nonce."""
    detail = step(oceanpy, "compute.stop", needs=(*C2D_STATUS, "computeStop"))
    assert (detail["status"], detail["ok"]) == (70, True)


def test_compute_delete(oceanpy: DriverRun, dev_stack: DevStack) -> None:
    """DataServiceProvider.delete_compute_job: DELETE with the query, signed like stop;
    the job is gone afterwards."""
    detail = step(oceanpy, "compute.delete", needs=(*C2D_RESULT, "computeStop", "computeDelete"))
    job_id = oceanpy.report["steps"]["compute.start"]["detail"]["job_id"]
    assert detail["deleted"] == {"jobId": job_id, "status": 70}
    consumer = oceanpy.report["steps"]["compute.start"]["detail"]["consumer"]
    [job] = httpx.get(dev_stack.provider_url + "/api/services/compute", timeout=10,
                      params={"consumerAddress": consumer, "jobId": job_id}).json()
    # As the reference (operator-service): the record stays, marked removed, no results.
    assert (job["removed"], job["results"]) == (1, [])


def test_compat_delete_twice_finds_the_removed_job(oceanpy: DriverRun) -> None:
    """delete_compute_job reads element 0 of the answer: a second delete must still
    answer the (removed) job, not an empty list."""
    detail = step(oceanpy, "compute.delete_again",
                  needs=(*C2D_RESULT, "computeStop", "computeDelete"))
    job_id = oceanpy.report["steps"]["compute.start"]["detail"]["job_id"]
    assert detail["deleted"] == {"jobId": job_id, "status": 70, "removed": 1}


def test_compat_delete_of_an_unknown_job_is_a_provider_error(oceanpy: DriverRun) -> None:
    """An unknown job: ocean.py raises its DataProviderException (not IndexError)."""
    detail = step(oceanpy, "compute.delete_unknown", needs=(*C2D_START, "computeDelete"))
    assert detail["raised"] == "DataProviderException", detail


def test_compat_stopped_job_has_its_log_as_result_zero(oceanpy: DriverRun) -> None:
    """A job stopped right after start: computeResult index 0 exists (the log, when the
    stop came before the algorithm ran). The e2e algorithm is quick, so the job may
    also have completed first; tests/api/test_compute.py stops a sleeping one."""
    detail = step(oceanpy, "compute.stop_fresh", needs=(*C2D_RESULT, "computeStop"))
    assert detail["status"] == 70, detail
    results = detail["results"]
    assert results and results[0]["index"] == 0 and results[-1]["type"] == "algorithmLog"
    assert detail["log"], detail
    if "stop" in detail["statusText"].lower() and len(results) == 1:
        assert detail["log"].endswith("tidegate: Job stopped\n"), detail
