"""GET /api/services/download: orders, refusals, streaming, Range."""

import asyncio
import hashlib

import httpx
import pytest
from web3.logs import DISCARD

from tests.api.access_helpers import download_params, order
from tests.chain_fixtures import ORIGIN_FILES, ChainHarness, order_asset, wait_for_ddo
from tests.fake_contracts import deploy_replayer, replay_events
from tests.helpers import OTHER_ADDRESS, OTHER_KEY
from tidegate.dev.ocean_txs import contract, set_metadata_state

DOWNLOAD = "/api/services/download"


async def ordered(harness: ChainHarness, client: httpx.AsyncClient, **publish: object) -> tuple:
    asset = harness.publish(**publish)
    harness.give_datatokens(asset)
    await wait_for_ddo(client, asset.did)
    return asset, await order(client, harness, asset)


async def test_download_after_order(harness: ChainHarness,
                                    chain_client: httpx.AsyncClient) -> None:
    asset, tx = await ordered(harness, chain_client, files=[
        {"type": "url", "url": harness.origin + "/data.csv"},
        {"type": "url", "url": harness.origin + "/big.bin", "method": "GET"}])
    r = await chain_client.get(DOWNLOAD, params=download_params(asset, tx))
    assert r.status_code == 200, r.text
    assert r.content == ORIGIN_FILES["data.csv"]
    assert r.headers["content-disposition"] == "attachment;filename=data.csv"
    assert r.headers["content-type"].startswith("text/csv")
    r = await chain_client.get(DOWNLOAD, params=download_params(asset, tx, file_index=1))
    assert r.status_code == 200
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(ORIGIN_FILES["big.bin"]).digest()
    assert r.headers["content-length"] == str(len(ORIGIN_FILES["big.bin"]))
    r = await chain_client.get(DOWNLOAD, params=download_params(asset, tx, file_index=2))
    assert (r.status_code, r.json()["code"]) == (400, "invalid_file_index")


@pytest.mark.parametrize(("range_header", "status", "expected"), [
    ("bytes=0-0", 206, slice(0, 1)),
    ("bytes=1000-1999", 206, slice(1000, 2000)),
    ("bytes=-100", 206, slice(-100, None)),
])
async def test_range_requests(harness: ChainHarness, chain_client: httpx.AsyncClient,
                              range_header: str, status: int, expected: slice) -> None:
    asset, tx = await ordered(harness, chain_client,
                              files=[{"type": "url", "url": harness.origin + "/big.bin"}])
    r = await chain_client.get(DOWNLOAD, params=download_params(asset, tx),
                               headers={"Range": range_header})
    assert r.status_code == status
    assert r.content == ORIGIN_FILES["big.bin"][expected]
    size = len(ORIGIN_FILES["big.bin"])
    assert r.headers["content-range"].endswith(f"/{size}")


async def test_unsatisfiable_range_is_416(harness: ChainHarness,
                                          chain_client: httpx.AsyncClient) -> None:
    asset, tx = await ordered(harness, chain_client,
                              files=[{"type": "url", "url": harness.origin + "/big.bin"}])
    r = await chain_client.get(DOWNLOAD, params=download_params(asset, tx),
                               headers={"Range": "bytes=99999999-"})
    assert r.status_code == 416
    assert r.json()["code"] == "range_not_satisfiable"


async def test_refusals(harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    asset, tx = await ordered(harness, chain_client)
    other = harness.publish(name="other")
    harness.give_datatokens(other)
    other_tx = await order(chain_client, harness, other)
    cases = {
        "no order": (download_params(asset, "0x" + "ab" * 32), 400, "order_invalid"),
        "order for another asset": (download_params(asset, other_tx), 400, "order_invalid"),
        "another consumer": (download_params(asset, tx, key=OTHER_KEY, address=OTHER_ADDRESS),
                             400, "order_invalid"),
        "unknown service": (download_params(asset, tx, service_id="7"), 400,
                            "invalid_service_id"),
        "bad signature": ({**download_params(asset, tx), "signature": "0x" + "11" * 65}, 401,
                          "invalid_signature"),
    }
    for label, (params, status, code) in cases.items():
        r = await chain_client.get(DOWNLOAD, params=params)
        assert (r.status_code, r.json()["code"]) == (status, code), label
    params = download_params(asset, tx)
    assert (await chain_client.get(DOWNLOAD, params=params)).status_code == 200
    replay = await chain_client.get(DOWNLOAD, params=params)
    assert (replay.status_code, replay.json()["code"]) == (401, "nonce_too_low")
    r = await chain_client.get(DOWNLOAD, params={"documentId": asset.did})
    assert r.status_code == 400 and "errors" in r.json()


async def test_forged_events_from_another_contract_are_refused(
        harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    asset, tx = await ordered(harness, chain_client)
    w3 = harness.chain.w3
    receipt = w3.eth.get_transaction_receipt(tx)
    dt = contract(w3, "ERC20Template", asset.datatoken_address)
    order_log = dt.events.OrderStarted().process_receipt(receipt, errors=DISCARD)[0]
    fee_log = dt.events.ProviderFee().process_receipt(receipt, errors=DISCARD)[0]
    raw = {log["logIndex"]: log for log in receipt["logs"]}
    replayer = deploy_replayer(w3, harness.consumer)
    forged = replay_events(w3, harness.consumer, replayer, raw[order_log["logIndex"]],
                           raw[fee_log["logIndex"]])
    r = await chain_client.get(DOWNLOAD, params=download_params(asset, forged))
    assert (r.status_code, r.json()["code"]) == (400, "order_invalid")


async def test_expired_order_revoked_and_denied(
        harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    asset, tx = await ordered(harness, chain_client, timeout=1)
    # Chain time moves with blocks (the dev chain runs ahead of the wall clock): mine
    # one 5 s later, then let the validator's once-a-second head-time cache expire.
    harness.chain.mine(harness.chain.latest_timestamp() + 5)
    await asyncio.sleep(1.1)
    r = await chain_client.get(DOWNLOAD, params=download_params(asset, tx))
    assert (r.status_code, r.json()["code"]) == (400, "order_invalid")
    assert "expired" in r.json()["error"]

    denied = harness.publish(credentials={
        "allow": [{"type": "address", "values": [OTHER_ADDRESS]}], "deny": []})
    harness.give_datatokens(denied)
    denied_tx = order_asset(harness, denied)  # initialize would refuse this consumer
    await wait_for_ddo(chain_client, denied.did)
    r = await chain_client.get(DOWNLOAD, params=download_params(denied, denied_tx))
    assert (r.status_code, r.json()["code"]) == (400, "credential_not_in_allow_list")

    revoked, revoked_tx = await ordered(harness, chain_client)
    set_metadata_state(harness.txs, harness.publisher, revoked.nft_address, 3)
    r = await chain_client.get(DOWNLOAD, params=download_params(revoked, revoked_tx))
    assert (r.status_code, r.json()["code"]) == (400, "asset_not_consumable")


async def test_upstream_errors_are_clear_and_leak_nothing(
        harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    missing = harness.origin + "/no-such-file"
    asset, tx = await ordered(harness, chain_client, files=[{"type": "url", "url": missing}])
    r = await chain_client.get(DOWNLOAD, params=download_params(asset, tx))
    assert r.status_code == 502
    assert "127.0.0.1" not in r.text and "no-such-file" not in r.text


async def test_auth_token_download(harness: ChainHarness,
                                   chain_client: httpx.AsyncClient) -> None:
    import time

    from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, sign_like_ocean_js

    asset, tx = await ordered(harness, chain_client)
    r = await chain_client.get("/api/services/createAuthToken", params={
        "address": CONSUMER_ADDRESS, "nonce": "1", "expiration": str(int(time.time()) + 60),
        "signature": sign_like_ocean_js(CONSUMER_ADDRESS + "1", CONSUMER_KEY)})
    params = download_params(asset, tx)
    del params["signature"]
    r = await chain_client.get(DOWNLOAD, params=params, headers={"AuthToken": r.json()["token"]})
    assert (r.status_code, r.content) == (200, ORIGIN_FILES["data.csv"])
