"""POST /api/services/auth/token and /auth/token/invalidate as ocean.js 8.6.2 calls them."""

import httpx
import jwt

from tests.api.node import oceanjs8
from tests.helpers import (
    CONSUMER_ADDRESS,
    CONSUMER_KEY,
    OTHER_ADDRESS,
    OTHER_KEY,
    sign_like_ocean_js8,
)

TOKEN = "/api/services/auth/token"
INVALIDATE = "/api/services/auth/token/invalidate"
DDO = {"id": "did:op:1"}


async def test_create_use_and_invalidate(client: httpx.AsyncClient) -> None:
    r = await oceanjs8.generate_auth_token(client)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    # ocean.js reads the address out of the token (decodeJwt(token).address).
    assert jwt.decode(token, options={"verify_signature": False})["address"] == CONSUMER_ADDRESS
    # The token in place of a signature: Authorization, raw, no nonce (ocean.js 8).
    r = await client.post(f"/api/services/encrypt?chainId=8996&consumerAddress={CONSUMER_ADDRESS}",
                          content=b"{}", headers={"Authorization": token,
                                                  "Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    # Someone else's address with this token is refused.
    r = await client.post("/api/services/encrypt?chainId=8996&consumerAddress=0x"
                          + "12" * 20, content=b"{}", headers={"Authorization": token})
    assert (r.status_code, r.json()["code"]) == (401, "invalid_token")
    r = await oceanjs8.invalidate_auth_token(client, token)
    assert (r.status_code, r.json()) == (200, {"success": True})
    r = await client.post(f"/api/services/encrypt?chainId=8996&consumerAddress={CONSUMER_ADDRESS}",
                          content=b"{}", headers={"Authorization": token})
    assert (r.status_code, r.json()["code"]) == (401, "token_deleted")


async def test_valid_until_in_milliseconds(client: httpx.AsyncClient) -> None:
    nonce, signature = await oceanjs8.signed(client, "createAuthToken")
    r = await client.post(TOKEN, json={"address": CONSUMER_ADDRESS, "signature": signature,
                                       "nonce": nonce, "validUntil": 4102444800000,
                                       "chainId": "8996"})
    assert r.status_code == 200, r.text
    assert jwt.decode(r.json()["token"], options={"verify_signature": False})["exp"] == (
        4102444800)


async def test_refusals(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN, json={"address": CONSUMER_ADDRESS, "nonce": "1"})
    assert (r.status_code, r.json()["code"]) == (400, "validation_error")
    assert "signature" in r.json()["errors"]
    # Signed by another key, or over another command: 401, and the nonce is not used.
    nonce = await oceanjs8.next_nonce(client)
    for signature in (sign_like_ocean_js8(CONSUMER_ADDRESS + nonce + "createAuthToken", OTHER_KEY),
                      sign_like_ocean_js8(CONSUMER_ADDRESS + nonce + "download", CONSUMER_KEY)):
        r = await client.post(TOKEN, json={"address": CONSUMER_ADDRESS, "nonce": nonce,
                                           "signature": signature})
        assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    assert await oceanjs8.next_nonce(client) == nonce
    # A token cannot mint tokens.
    token = (await oceanjs8.generate_auth_token(client)).json()["token"]
    r = await client.post(TOKEN, json={"address": CONSUMER_ADDRESS, "nonce": "999"},
                          headers={"Authorization": token})
    assert r.status_code == 400
    # Invalidate needs the owner's fresh signature (Ocean Node checks none: its check's
    # result object is always true).
    nonce = await oceanjs8.next_nonce(client)
    r = await client.post(INVALIDATE, json={
        "address": CONSUMER_ADDRESS, "nonce": nonce, "token": token,
        "signature": sign_like_ocean_js8(CONSUMER_ADDRESS + nonce, OTHER_KEY)})
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    # The command form is accepted too.
    r = await client.post(INVALIDATE, json={
        "address": CONSUMER_ADDRESS, "nonce": nonce, "token": token,
        "signature": sign_like_ocean_js8(CONSUMER_ADDRESS + nonce + "invalidateAuthToken",
                                         CONSUMER_KEY)})
    assert (r.status_code, r.json()) == (200, {"success": True})
    # Another address's token cannot be revoked by someone else.
    other = (await oceanjs8.generate_auth_token(client)).json()["token"]
    r = await oceanjs8.invalidate_auth_token(client, other, key=OTHER_KEY,
                                             address=OTHER_ADDRESS)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_token")
    r = await client.post(f"/api/services/encrypt?chainId=8996&consumerAddress={CONSUMER_ADDRESS}",
                          content=b"{}", headers={"Authorization": other})
    assert r.status_code == 200
