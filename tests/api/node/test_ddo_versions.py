"""Publishing as ocean.js 8.6.2 does it (``Aquarius.validate``'s signed body, a 5.0.0 DDO
through ddo-js's layout), then resolve, initialize, order and download it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address

from tests.api.node import oceanjs8
from tests.chain_fixtures import ORIGIN_FILES, ChainHarness, wait_for_ddo
from tests.helpers import (
    CONSUMER_ADDRESS,
    CONSUMER_KEY,
    OTHER_ADDRESS,
    OTHER_KEY,
    sign_like_ocean_js8,
)
from tidegate.assets.ddo import did_for
from tidegate.assets.versions import js_stringify
from tidegate.dev import ocean_txs
from tidegate.fees.provider_fees import ProviderFee

VALIDATE = "/api/aquarius/assets/ddo/validate"
NFT = to_checksum_address("0x1f0b6c6dcc1b2b1be32e8b0bb48b0e0c0b6fd4aa")
DT = to_checksum_address("0x2a6b0b3c1f4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f")


def v5_ddo(nft: str = NFT, datatoken: str = DT, files: str = "0xabcd") -> dict[str, Any]:
    did = did_for(nft, 8996, "did:ope:")
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"], "id": did, "version": "5.0.0",
        "type": ["VerifiableCredential"], "issuer": "did:op:publisher",
        "credentialSubject": {
            "id": did, "chainId": 8996, "nftAddress": nft,
            "metadata": {"created": "2026-12-01T10:00:00Z", "updated": "2026-12-01T10:00:00Z",
                         "type": "dataset", "name": "tides ✓", "providedBy": "harbour",
                         "description": {"@value": "hourly", "@language": "en"}},
            "services": [{"id": "svc-0", "type": "access", "name": "download",
                          "files": files, "datatokenAddress": datatoken,
                          "serviceEndpoint": "http://tidegate", "timeout": 3600, "state": 0}],
            "credentials": {"allow": [], "deny": []},
        },
    }


async def encrypt_like_ocean_js8(client: httpx.AsyncClient, value: Any) -> httpx.Response:
    """``ProviderInstance.encrypt``: the body is ``JSON.stringify(value)`` (UTF-8, as is)."""
    nonce, signature = await oceanjs8.signed(client, "encrypt")
    _, path = await oceanjs8.endpoint(client, "encrypt")
    return await client.post(
        path + f"?chainId=8996&nonce={nonce}&consumerAddress={CONSUMER_ADDRESS}"
        f"&signature={signature}", content=js_stringify(value).encode(),
        headers={"Content-Type": "application/octet-stream"})


async def validate_like_ocean_js8(client: httpx.AsyncClient, ddo: dict[str, Any],
                                  key: str = CONSUMER_KEY,
                                  address: str = CONSUMER_ADDRESS) -> httpx.Response:
    """``Aquarius.validate``: nonce + 1, sign ``address + nonce + "validateDDO"``, POST
    ``JSON.stringify({ddo, publisherAddress, nonce, signature})``."""
    nonce = await oceanjs8.next_nonce(client, address)
    signature = sign_like_ocean_js8(address + nonce + "validateDDO", key)
    body = js_stringify({"ddo": ddo, "publisherAddress": address, "nonce": nonce,
                         "signature": signature})
    return await client.post(VALIDATE, content=body.encode(), headers={
        **oceanjs8.JSON, "Authorization": "undefined"})  # Node's fetch sends it so


async def test_validate_as_ocean_js8(client: httpx.AsyncClient) -> None:
    ddo = v5_ddo()
    r = await validate_like_ocean_js8(client, ddo)
    assert r.status_code == 200, r.text  # ocean.js 8 wants exactly 200
    proof = r.json()
    # The hash of the text ocean.js encrypts (JSON.stringify(ddo)), non-ASCII kept.
    assert proof["hash"] == "0x" + hashlib.sha256(js_stringify(ddo).encode()).hexdigest()
    # ocean.js reads r[0], s[0], v and publicKey: a signature of the hash by it.
    signer = Account.recover_message(encode_defunct(primitive=bytes.fromhex(proof["hash"][2:])),
                                     vrs=(proof["v"], proof["r"][0], proof["s"][0]))
    assert signer == proof["publicKey"]
    # The nonce was consumed: the same body again is refused.
    nonce = str(int(await oceanjs8.next_nonce(client)) - 1)
    replay = {"ddo": ddo, "publisherAddress": CONSUMER_ADDRESS, "nonce": nonce,
              "signature": sign_like_ocean_js8(CONSUMER_ADDRESS + nonce + "validateDDO",
                                               CONSUMER_KEY)}
    r = await client.post(VALIDATE, json=replay)
    assert (r.status_code, r.json()["code"]) == (401, "nonce_too_low")


async def test_validate_refusals_in_ocean_node_form(client: httpx.AsyncClient) -> None:
    r = await validate_like_ocean_js8(client, v5_ddo(), key=OTHER_KEY)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    broken = v5_ddo()
    del broken["credentialSubject"]["metadata"]["providedBy"]
    broken["id"] = did_for(NFT, 8996)
    r = await validate_like_ocean_js8(client, broken)
    assert r.status_code == 400
    assert r.json()["code"] == "validation_error"
    assert {"id", "credentialSubject.metadata.providedBy"} <= set(r.json()["errors"])
    # Unsigned, Ocean Node's form still answers (as the classic form does); no nonce used.
    before = await oceanjs8.next_nonce(client)
    r = await client.post(VALIDATE, json={"ddo": v5_ddo()})
    assert r.status_code == 200, r.text
    assert await oceanjs8.next_nonce(client) == before


async def test_classic_validate_still_hashes_the_posted_bytes(client: httpx.AsyncClient) -> None:
    """ocean.py posts the DDO itself, with its own spacing: the hash is of those bytes."""
    ddo = {"@context": ["https://w3id.org/did/v1"], "id": did_for(NFT, 8996),
           "version": "4.1.0", "chainId": 8996, "nftAddress": NFT,
           "metadata": {"created": "x", "updated": "x", "type": "dataset", "name": "x",
                        "description": "x", "author": "x", "license": "x"},
           "services": [{"id": "0", "type": "access", "files": "0x", "datatokenAddress": DT,
                         "serviceEndpoint": "x", "timeout": 0}]}
    body = json.dumps(ddo, indent=1).encode()
    r = await client.post(VALIDATE, content=body)
    assert r.status_code == 200, r.text
    assert r.json()["hash"] == "0x" + hashlib.sha256(body).hexdigest()


async def test_publish_resolve_and_download_a_v5_asset(
        harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    """The CodeExamples flow with a 5.0.0 DDO: encrypt the files and the DDO (signed),
    validate, setMetadata(flags 2, the validate hash), resolve, initialize, order,
    download with the node-signed URL."""
    nft, datatoken = ocean_txs.create_data_nft_with_datatoken(
        harness.txs, harness.addresses, harness.publisher)
    files = {"datatokenAddress": datatoken, "nftAddress": nft,
             "files": [{"type": "url", "url": harness.origin + "/data.csv", "method": "GET"}]}
    r = await encrypt_like_ocean_js8(chain_client, files)
    assert r.status_code == 200, r.text
    ddo = v5_ddo(nft, datatoken, r.text)
    # The service admits the consumer only (a service-level rule, checked after the DDO's).
    ddo["credentialSubject"]["services"][0]["credentials"] = {
        "allow": [{"type": "address", "values": [CONSUMER_ADDRESS]}]}
    r = await encrypt_like_ocean_js8(chain_client, ddo)
    assert r.status_code == 200, r.text
    encrypted = bytes.fromhex(r.text[2:])
    r = await validate_like_ocean_js8(chain_client, ddo)
    assert r.status_code == 200, r.text
    ocean_txs.set_metadata(harness.txs, harness.publisher, nft, 0, "http://tidegate",
                           harness.publisher.address, bytes([2]), encrypted,
                           bytes.fromhex(r.json()["hash"][2:]))
    resolved = await wait_for_ddo(chain_client, ddo["id"])
    assert resolved["credentialSubject"]["metadata"] == ddo["credentialSubject"]["metadata"]
    assert resolved["indexedMetadata"]["nft"]["address"] == nft
    assert resolved["credentialSubject"]["datatokens"][0]["address"] == datatoken
    r = await chain_client.get(f"/api/aquarius/assets/metadata/{ddo['id']}")
    assert r.json() == ddo["credentialSubject"]["metadata"]
    r = await chain_client.post("/api/aquarius/assets/names", json={"didList": [ddo["id"]]})
    assert r.json() == {ddo["id"]: "tides ✓"}

    ocean_txs.mint_datatoken(harness.txs, harness.publisher, datatoken,
                             harness.consumer.address, 10**18)
    r = await oceanjs8.initialize(chain_client, ddo["id"], service_id="svc-0")
    assert r.status_code == 200, r.text
    fee = ProviderFee.from_json(r.json()["providerFee"])
    tx = ocean_txs.start_order(harness.txs, harness.consumer, datatoken, CONSUMER_ADDRESS,
                               0, fee)
    url = await oceanjs8.download_url(chain_client, ddo["id"], str(tx), service_id="svc-0")
    r = await chain_client.get(url)
    assert r.status_code == 200, r.text
    assert r.content == ORIGIN_FILES["data.csv"]
    r = await oceanjs8.file_info(chain_client, {"did": ddo["id"], "serviceId": "svc-0"})
    assert r.status_code == 200, r.text
    assert [e["valid"] for e in r.json()] == [True]
    r = await oceanjs8.initialize(chain_client, ddo["id"], service_id="svc-0",
                                  consumer=OTHER_ADDRESS)
    assert (r.status_code, r.json()["code"]) == (400, "credential_not_in_allow_list")
