"""POST /api/services/encrypt as ocean.js 8.6.2 sends it: signed, 200 octet-stream."""

import asyncio
import json

import ecies
import httpx
from eth_utils import keccak

from tests.api.node import oceanjs8
from tests.helpers import (
    CONSUMER_ADDRESS,
    CONSUMER_KEY,
    OTHER_KEY,
    PROVIDER_KEY,
    sign_like_ocean_js,
    sign_like_ocean_js8,
)

DDO = {"@context": ["https://w3id.org/did/v1"], "id": "did:op:" + "ab" * 32, "version": "4.1.0"}


async def test_signed_encrypt_round_trip(client: httpx.AsyncClient) -> None:
    r = await oceanjs8.encrypt(client, DDO)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.text.startswith("0x04")
    plain = ecies.decrypt(PROVIDER_KEY[2:], bytes.fromhex(r.text[2:]))
    assert plain == json.dumps(DDO, separators=(",", ":")).encode()


async def test_the_classic_encrypt_is_unchanged_on_the_same_path(
        client: httpx.AsyncClient) -> None:
    r = await client.post("/api/services/encrypt?chainId=8996", content=b"x",
                          headers={"Content-Type": "application/octet-stream"})
    assert (r.status_code, r.headers["content-type"]) == (201, "text/plain")


async def test_digests_with_a_leading_zero_byte(client: httpx.AsyncClient) -> None:
    # keccak(address + "62" + "encrypt") and (... "301" ...) start with 0x00: ocean.js 8
    # signs such a digest as 31 bytes, a correct client as 32 (Ocean Node refuses that).
    for nonce, sign in (("62", sign_like_ocean_js8), ("301", sign_like_ocean_js)):
        message = CONSUMER_ADDRESS + nonce + "encrypt"
        assert keccak(text=message)[0] == 0
        r = await oceanjs8.encrypt(client, DDO, nonce=nonce,
                                   signature=sign(message, CONSUMER_KEY))
        assert r.status_code == 200, r.text


async def test_refusals(client: httpx.AsyncClient) -> None:
    nonce, signature = await oceanjs8.signed(client, "encrypt")
    # Another command's signature, another signer, a replayed nonce, no signature.
    wrong = sign_like_ocean_js8(CONSUMER_ADDRESS + nonce + "download", CONSUMER_KEY)
    r = await oceanjs8.encrypt(client, DDO, nonce=nonce, signature=wrong)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    other = sign_like_ocean_js8(CONSUMER_ADDRESS + nonce + "encrypt", OTHER_KEY)
    r = await oceanjs8.encrypt(client, DDO, nonce=nonce, signature=other)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    r = await oceanjs8.encrypt(client, DDO, nonce=nonce, signature=signature)
    assert r.status_code == 200
    r = await oceanjs8.encrypt(client, DDO, nonce=nonce, signature=signature)
    assert (r.status_code, r.json()["code"]) == (401, "nonce_too_low")
    r = await oceanjs8.encrypt(client, DDO, nonce="99", signature="")
    assert (r.status_code, r.json()["code"]) == (401, "missing_signature")
    r = await oceanjs8.encrypt(client, {}, nonce="100", signature=sign_like_ocean_js8(
        CONSUMER_ADDRESS + "100encrypt", CONSUMER_KEY), chain_id=1)
    assert r.status_code == 400


async def test_concurrent_requests_with_one_nonce_give_one_success(
        client: httpx.AsyncClient) -> None:
    nonce, signature = await oceanjs8.signed(client, "encrypt")
    answers = await asyncio.gather(*(oceanjs8.encrypt(client, DDO, nonce=nonce,
                                                      signature=signature)
                                     for _ in range(8)))
    assert sorted(r.status_code for r in answers) == [200] + [401] * 7
