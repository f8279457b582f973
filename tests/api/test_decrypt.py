"""POST /api/services/decrypt on the dev chain, as Aquarius and indexers call it."""

import hashlib
import logging
import lzma
import time
from collections.abc import Callable

import httpx
import pytest

from tests.chain_fixtures import ChainHarness
from tests.conftest import start_app
from tests.helpers import (
    CONSUMER_ADDRESS,
    CONSUMER_KEY,
    OTHER_ADDRESS,
    sign_like_ocean_js,
    sign_like_ocean_py,
)
from tidegate.dev.ocean_txs import set_metadata, set_metadata_state
from tidegate.dev.publishing import compact_json
from tidegate.settings import Settings

DECRYPT = "/api/services/decrypt"


def aquarius_body(tx: str, nft: str, nonce: str | None = None) -> dict[str, object]:
    """What Aquarius sends: nanosecond nonce, eth_keys signature with v = 0/1."""
    nonce = nonce or str(time.time_ns())
    message = tx + CONSUMER_ADDRESS + "8996" + nonce
    return {"transactionId": tx, "chainId": 8996, "decrypterAddress": CONSUMER_ADDRESS,
            "dataNftAddress": nft, "nonce": nonce,
            "signature": sign_like_ocean_py(message, CONSUMER_KEY)}


async def test_decrypt_by_transaction_like_aquarius(
    harness: ChainHarness, chain_client: httpx.AsyncClient
) -> None:
    asset = harness.publish()
    r = await chain_client.post(DECRYPT, json=aquarius_body(asset.metadata_tx, asset.nft_address))
    assert r.status_code == 201, r.text
    assert r.content == compact_json(asset.ddo)
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(compact_json(asset.ddo)).digest()


async def test_decrypt_direct_document_like_ocean_node(
    harness: ChainHarness, chain_client: httpx.AsyncClient
) -> None:
    asset = harness.publish()
    plain = b'{"id": "whatever"}'
    for flags, document in ((0, plain), (1, lzma.compress(plain)),
                            (2, bytes.fromhex(harness.encrypt(plain)[2:])),
                            (3, bytes.fromhex(harness.encrypt(lzma.compress(plain))[2:]))):
        nonce = str(time.time_ns())
        body = {"decrypterAddress": CONSUMER_ADDRESS, "chainId": 8996,
                "dataNftAddress": asset.nft_address, "encryptedDocument": "0x" + document.hex(),
                "flags": flags, "documentHash": "0x" + hashlib.sha256(plain).hexdigest(),
                "nonce": nonce,
                "signature": sign_like_ocean_js(
                    asset.nft_address + CONSUMER_ADDRESS + "8996" + nonce, CONSUMER_KEY)}
        r = await chain_client.post(DECRYPT, json=body)
        assert (r.status_code, r.content) == (201, plain), flags

        body["nonce"] = nonce = str(time.time_ns())
        body["documentHash"] = "0x" + "00" * 32
        body["signature"] = sign_like_ocean_js(
            asset.nft_address + CONSUMER_ADDRESS + "8996" + nonce, CONSUMER_KEY)
        r = await chain_client.post(DECRYPT, json=body)
        assert (r.status_code, r.json()["code"]) == (400, "checksum_mismatch"), flags


async def test_wrong_flags_fail_clearly(
    harness: ChainHarness, chain_client: httpx.AsyncClient
) -> None:
    asset = harness.publish()
    plain = b"not encrypted"
    nonce = str(time.time_ns())
    body = {"decrypterAddress": CONSUMER_ADDRESS, "chainId": "8996",
            "dataNftAddress": asset.nft_address, "encryptedDocument": "0x" + plain.hex(),
            "flags": 2, "documentHash": "0x" + hashlib.sha256(plain).hexdigest(), "nonce": nonce,
            "signature": sign_like_ocean_js(
                asset.nft_address + CONSUMER_ADDRESS + "8996" + nonce, CONSUMER_KEY)}
    r = await chain_client.post(DECRYPT, json=body)
    assert (r.status_code, r.json()["code"]) == (400, "decryption_failed")
    body["flags"], body["nonce"] = 999, str(time.time_ns())
    body["signature"] = sign_like_ocean_js(
        asset.nft_address + CONSUMER_ADDRESS + "8996" + body["nonce"], CONSUMER_KEY)
    r = await chain_client.post(DECRYPT, json=body)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_flags")


async def test_unauthorized_decrypter_is_403(
    harness: ChainHarness, chain_settings: Callable[..., Settings]
) -> None:
    asset = harness.publish()
    settings = chain_settings(AUTHORIZED_DECRYPTERS=f'["{OTHER_ADDRESS}"]')
    async for client in start_app(settings):
        r = await client.post(DECRYPT, json=aquarius_body(asset.metadata_tx, asset.nft_address))
        assert r.status_code == 403
        assert r.json() == {"error": "Decrypter not authorized",
                            "code": "decrypter_not_authorized"}


async def test_nft_not_from_factory(harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    asset = harness.publish()
    fake_nft = harness.addresses["Ocean"]  # a contract, but not a factory NFT
    r = await chain_client.post(DECRYPT, json=aquarius_body(asset.metadata_tx, fake_nft))
    assert (r.status_code, r.json()["code"]) == (400, "nft_not_from_factory")


async def test_metadata_event_of_another_nft_is_refused(
    harness: ChainHarness, chain_client: httpx.AsyncClient
) -> None:
    first, second = harness.publish(name="first"), harness.publish(name="second")
    r = await chain_client.post(DECRYPT, json=aquarius_body(first.metadata_tx,
                                                            second.nft_address))
    assert (r.status_code, r.json()["code"]) == (400, "invalid_transaction")
    r = await chain_client.post(DECRYPT, json=aquarius_body("0x" + "ab" * 32,
                                                            first.nft_address))
    assert (r.status_code, r.json()["code"]) == (400, "invalid_transaction")


@pytest.mark.parametrize(("state", "status", "code"), [
    (1, 403, "asset_end_of_life"), (2, 403, "asset_deprecated"), (3, 403, "asset_revoked"),
    (4, 201, None), (5, 201, None),
])
async def test_metadata_states(harness: ChainHarness, chain_client: httpx.AsyncClient,
                               state: int, status: int, code: str | None) -> None:
    asset = harness.publish()
    set_metadata_state(harness.txs, harness.publisher, asset.nft_address, state)
    r = await chain_client.post(DECRYPT, json=aquarius_body(asset.metadata_tx, asset.nft_address))
    assert r.status_code == status
    if code:
        assert r.json()["code"] == code


async def test_updated_metadata_by_transaction(
    harness: ChainHarness, chain_client: httpx.AsyncClient
) -> None:
    asset = harness.publish()
    new = compact_json({**asset.ddo, "metadata": {**asset.ddo["metadata"], "name": "v2"}})
    tx = set_metadata(harness.txs, harness.publisher, asset.nft_address, 0, "http://x",
                      harness.publisher.address, bytes([0]), new, hashlib.sha256(new).digest())
    r = await chain_client.post(DECRYPT, json=aquarius_body(tx, asset.nft_address))
    assert (r.status_code, r.content) == (201, new)


async def test_signature_and_nonce_rules(
    harness: ChainHarness, chain_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    asset = harness.publish()
    body = aquarius_body(asset.metadata_tx, asset.nft_address)
    with caplog.at_level(logging.DEBUG):
        assert (await chain_client.post(DECRYPT, json=body)).status_code == 201
        replay = await chain_client.post(DECRYPT, json=body)
    assert (replay.status_code, replay.json()["code"]) == (401, "nonce_too_low")
    tampered = {**body, "nonce": str(int(str(body["nonce"])) + 1)}
    r = await chain_client.post(DECRYPT, json=tampered)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    r = await chain_client.post(DECRYPT, json={})
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"decrypterAddress", "chainId", "dataNftAddress", "nonce"}
    r = await chain_client.post(DECRYPT, json={**body, "chainId": 1})
    assert (r.status_code, r.json()["code"]) == (400, "unsupported_chain")
    # The decrypted document never reaches a log line.
    assert asset.ddo["metadata"]["name"] not in caplog.text


async def test_auth_token_replaces_signature(
    harness: ChainHarness, chain_client: httpx.AsyncClient
) -> None:
    asset = harness.publish()
    r = await chain_client.get("/api/services/createAuthToken", params={
        "address": CONSUMER_ADDRESS, "nonce": "1", "expiration": str(int(time.time()) + 60),
        "signature": sign_like_ocean_js(CONSUMER_ADDRESS + "1", CONSUMER_KEY)})
    token = r.json()["token"]
    body = aquarius_body(asset.metadata_tx, asset.nft_address)
    del body["signature"]
    r = await chain_client.post(DECRYPT, json=body, headers={"AuthToken": token})
    assert r.status_code == 201
    body["nonce"] = str(time.time_ns())
    r = await chain_client.post(DECRYPT, json=body, headers={"AuthToken": "garbage"})
    assert (r.status_code, r.json()["code"]) == (401, "invalid_token")
    r = await chain_client.post(DECRYPT, json=body)
    assert (r.status_code, r.json()["code"]) == (401, "missing_signature")
