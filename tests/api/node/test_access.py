"""The access flow as ocean.js 8.6.2 drives it over HTTP: fileInfo, initialize, order,
download (signed, or with a token), on the dev chain, beside the classic clients."""

import httpx
from eth_utils import keccak

from tests.api.access_helpers import download_params
from tests.api.node import oceanjs8
from tests.chain_fixtures import ORIGIN_FILES, ChainHarness, wait_for_ddo
from tests.helpers import (
    CONSUMER_ADDRESS,
    CONSUMER_KEY,
    OTHER_ADDRESS,
    OTHER_KEY,
    sign_like_ocean_js,
    sign_like_ocean_js8,
)
from tidegate.dev import ocean_txs
from tidegate.fees.provider_fees import ProviderFee


async def ordered(harness: ChainHarness, client: httpx.AsyncClient) -> tuple:
    asset = harness.publish(files=[{"type": "url", "url": harness.origin + "/data.csv"},
                                   {"type": "url", "url": harness.origin + "/big.bin"}])
    harness.give_datatokens(asset)
    await wait_for_ddo(client, asset.did)
    r = await oceanjs8.initialize(client, asset.did)
    assert r.status_code == 200, r.text  # ocean.js 8 wants exactly 200
    quote = r.json()
    assert set(quote) == {"datatoken", "nonce", "computeAddress", "providerFee"}
    assert quote["datatoken"].lower() == asset.datatoken_address.lower()
    fee = ProviderFee.from_json(quote["providerFee"])
    tx = ocean_txs.start_order(harness.txs, harness.consumer, asset.datatoken_address,
                               CONSUMER_ADDRESS, 0, fee)
    return asset, str(tx)


async def test_signed_download(harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    asset, tx = await ordered(harness, chain_client)
    url = await oceanjs8.download_url(chain_client, asset.did, tx)
    r = await chain_client.get(url)  # downloadFile: a plain fetch(url)
    assert r.status_code == 200, r.text
    assert r.content == ORIGIN_FILES["data.csv"]
    assert r.headers["content-disposition"] == "attachment;filename=data.csv"
    # The same URL again: the nonce is used.
    r = await chain_client.get(url)
    assert (r.status_code, r.json()["code"]) == (401, "nonce_too_low")
    url = await oceanjs8.download_url(chain_client, asset.did, tx, file_index=1)
    r = await chain_client.get(url, headers={"Range": "bytes=0-9"})
    assert (r.status_code, r.content) == (206, ORIGIN_FILES["big.bin"][:10])
    # The classic client, same process, same order, its own message.
    r = await chain_client.get("/api/services/download", params=download_params(asset, tx))
    assert r.status_code == 200, r.text


async def test_download_digest_with_a_leading_zero_byte(
        harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    asset, tx = await ordered(harness, chain_client)
    base = (f"/api/services/download?fileIndex=0&documentId={asset.did}&transferTxId={tx}"
            f"&serviceId=0&consumerAddress={CONSUMER_ADDRESS}")
    for nonce, sign in (("159", sign_like_ocean_js8), ("583", sign_like_ocean_js)):
        message = CONSUMER_ADDRESS + nonce + "download"
        assert keccak(text=message)[0] == 0
        r = await chain_client.get(base + f"&nonce={nonce}&signature={sign(message, CONSUMER_KEY)}")
        assert r.status_code == 200, r.text


async def test_refusals(harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    asset, tx = await ordered(harness, chain_client)
    base = (f"/api/services/download?fileIndex=0&documentId={asset.did}&transferTxId={tx}"
            f"&serviceId=0&consumerAddress={CONSUMER_ADDRESS}&nonce=7")
    for signature in (sign_like_ocean_js8(CONSUMER_ADDRESS + "7encrypt", CONSUMER_KEY),
                      sign_like_ocean_js8(CONSUMER_ADDRESS + "7download", OTHER_KEY)):
        r = await chain_client.get(base + f"&signature={signature}")
        assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    # Signed correctly by someone who did not order: the order check refuses it.
    url = await oceanjs8.download_url(chain_client, asset.did, tx, key=OTHER_KEY,
                                      address=OTHER_ADDRESS)
    r = await chain_client.get(url)
    assert (r.status_code, r.json()["code"]) == (400, "order_invalid")


async def test_download_with_an_auth_token(harness: ChainHarness,
                                           chain_client: httpx.AsyncClient) -> None:
    asset, tx = await ordered(harness, chain_client)
    token = (await oceanjs8.generate_auth_token(chain_client)).json()["token"]
    url = await oceanjs8.download_url(chain_client, asset.did, tx, token=True)
    assert "nonce=" not in url and "signature=" not in url
    r = await chain_client.get(url, headers={"Authorization": token})
    assert r.status_code == 200, r.text
    assert r.content == ORIGIN_FILES["data.csv"]
    # No token, no signature: refused; the classic AuthToken still needs its nonce.
    r = await chain_client.get(url)
    assert (r.status_code, r.json()["code"]) == (400, "validation_error")
    r = await chain_client.get(url, headers={"AuthToken": token})
    assert (r.status_code, r.json()["code"]) == (400, "validation_error")
    assert (await oceanjs8.invalidate_auth_token(chain_client, token)).status_code == 200
    r = await chain_client.get(url, headers={"Authorization": token})
    assert (r.status_code, r.json()["code"]) == (401, "token_deleted")


async def test_file_info(harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    asset = harness.publish(files=[{"type": "url", "url": harness.origin + "/data.csv"}])
    await wait_for_ddo(chain_client, asset.did)
    expected = [{"valid": True, "contentLength": str(len(ORIGIN_FILES["data.csv"])),
                 "contentType": "text/csv", "name": "data.csv", "type": "url"}]
    r = await chain_client.post("/api/services/fileInfo",
                                json={"did": asset.did, "serviceId": "0", "checksum": False})
    assert (r.status_code, r.json()) == (200, expected)
    r = await chain_client.post("/directCommand", json={
        "command": "fileInfo", "did": asset.did, "serviceId": "0"})
    assert (r.status_code, r.json()) == (200, expected)
    # What ocean.js 8.6.2 picks from GET /: the classic route, the classic entries.
    r = await oceanjs8.file_info(chain_client, {"did": asset.did, "serviceId": "0"})
    assert r.status_code == 200
    assert r.json()[0]["valid"] is True and r.json()[0]["filename"] == "data.csv"
    # A bare file object, as getFileInfo sends it.
    r = await chain_client.post("/api/services/fileInfo", json={
        "type": "url", "url": harness.origin + "/data.csv", "method": "GET",
        "checksum": False})
    assert (r.status_code, r.json()) == (200, expected)
    r = await chain_client.post("/api/services/fileInfo", json={
        "type": "url", "url": harness.origin + "/missing", "method": "GET"})
    assert r.status_code == 200 and r.json()[0]["valid"] is False
    r = await chain_client.post("/api/services/fileInfo", json={"did": asset.did})
    assert (r.status_code, r.json()["code"]) == (400, "validation_error")
