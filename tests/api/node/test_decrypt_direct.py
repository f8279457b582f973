"""POST /api/services/decrypt as Ocean Node's indexer sends it, and /directCommand."""

import time

import httpx

from tests.chain_fixtures import ChainHarness
from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, OTHER_KEY, sign_like_ocean_js8
from tidegate.dev.publishing import compact_json


def indexer_body(tx: str, nft: str, nonce: str, key: str = CONSUMER_KEY) -> dict[str, object]:
    """BaseProcessor.decryptDDO (ocean-node v3.2.0): address + nonce + "decryptDDO"."""
    return {"transactionId": tx, "chainId": 8996, "decrypterAddress": CONSUMER_ADDRESS,
            "dataNftAddress": nft, "nonce": nonce,
            "signature": sign_like_ocean_js8(CONSUMER_ADDRESS + nonce + "decryptDDO", key)}


async def test_decrypt_like_the_ocean_node_indexer(
        harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    asset = harness.publish()
    nonce = str(time.time_ns())
    body = indexer_body(asset.metadata_tx, asset.nft_address, nonce)
    r = await chain_client.post("/api/services/decrypt", json=body)
    # The indexer takes 200 or 201; Aquarius only 201: one answer for both.
    assert r.status_code == 201, r.text
    assert r.content == compact_json(asset.ddo)
    r = await chain_client.post("/api/services/decrypt", json=body)
    assert (r.status_code, r.json()["code"]) == (401, "nonce_too_low")
    r = await chain_client.post("/api/services/decrypt", json=indexer_body(
        asset.metadata_tx, asset.nft_address, str(int(nonce) + 1), key=OTHER_KEY))
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")


async def test_direct_command(client: httpx.AsyncClient) -> None:
    r = await client.post("/directCommand", json={"command": "status"})
    assert r.status_code == 200
    status = r.json()
    assert status["http"] is True and status["p2p"] is False
    assert status["provider"] == [{"chainId": "8996", "network": "8996"}]
    r = await client.post("/directCommand", json={"command": "nonce",
                                                  "address": CONSUMER_ADDRESS})
    # Ocean Node's nonce command answers the digits as text/plain.
    assert (r.status_code, r.text) == (200, "1")
    assert r.headers["content-type"].startswith("text/plain")
    r = await client.post("/directCommand", json={"command": "stopNode"})
    assert (r.status_code, r.json()["code"]) == (400, "unknown_command")
    r = await client.post("/directCommand", json={})
    assert (r.status_code, r.json()["code"]) == (400, "validation_error")
    r = await client.post("/directCommand", json={"command": "nonce", "address": "0x12"})
    assert r.status_code == 400
