import time

import httpx

from tests.helpers import (
    CONSUMER_ADDRESS,
    CONSUMER_KEY,
    OTHER_ADDRESS,
    OTHER_KEY,
    sign_like_ocean_js,
    sign_like_ocean_py,
)

CREATE = "/api/services/createAuthToken"
DELETE = "/api/services/deleteAuthToken"


def future() -> str:
    return str(int(time.time()) + 3600)


async def create(client: httpx.AsyncClient, nonce: str, expiration: str | None = None,
                 key: str = CONSUMER_KEY, address: str = CONSUMER_ADDRESS) -> httpx.Response:
    return await client.get(CREATE, params={
        "address": address, "nonce": nonce, "expiration": expiration or future(),
        "signature": sign_like_ocean_js(address + nonce, key),
    })


async def test_create_and_delete_token(client: httpx.AsyncClient) -> None:
    r = await create(client, "1")
    assert r.status_code == 200
    token = r.json()["token"]
    assert token.count(".") == 2
    r = await client.request("DELETE", DELETE, params={
        "address": CONSUMER_ADDRESS, "nonce": "2", "token": token,
        "signature": sign_like_ocean_py(CONSUMER_ADDRESS + "2", CONSUMER_KEY),
    })
    assert r.status_code == 200
    assert r.json() == {"success": "Token has been deactivated."}
    # A deleted token is refused: deleting again says so.
    r = await client.request("DELETE", DELETE, params={
        "address": CONSUMER_ADDRESS, "nonce": "3", "token": token,
        "signature": sign_like_ocean_py(CONSUMER_ADDRESS + "3", CONSUMER_KEY),
    })
    assert (r.status_code, r.json()["code"]) == (401, "token_deleted")
    # So is any other spelling of it (a padded signature still decodes).
    for n, spelling in enumerate((token + "=", token + "=="), start=4):
        r = await client.request("DELETE", DELETE, params={
            "address": CONSUMER_ADDRESS, "nonce": str(n), "token": spelling,
            "signature": sign_like_ocean_py(CONSUMER_ADDRESS + str(n), CONSUMER_KEY),
        })
        assert r.status_code == 401, spelling


async def test_json_body_parameters_with_json_nonce(client: httpx.AsyncClient) -> None:
    body = {"address": CONSUMER_ADDRESS, "nonce": 5, "expiration": int(future()),
            "signature": sign_like_ocean_js(CONSUMER_ADDRESS + "5", CONSUMER_KEY)}
    r = await client.request("GET", CREATE, json=body)
    assert r.status_code == 200, r.text


async def test_create_requires_future_expiration(client: httpx.AsyncClient) -> None:
    r = await create(client, "1", expiration=str(int(time.time()) - 1))
    assert (r.status_code, r.json()["code"]) == (400, "invalid_expiration")
    r = await create(client, "1", expiration="soon")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_expiration")


async def test_create_requires_signature_fields(client: httpx.AsyncClient) -> None:
    r = await client.get(CREATE, params={"address": CONSUMER_ADDRESS})
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"nonce", "signature", "expiration"}


async def test_bad_signatures_are_401(client: httpx.AsyncClient) -> None:
    cases = {
        "tampered": sign_like_ocean_js(CONSUMER_ADDRESS + "2", CONSUMER_KEY),
        "wrong key": sign_like_ocean_js(CONSUMER_ADDRESS + "1", OTHER_KEY),
        "short": "0x1234",
        "non-hex": "0x" + "zz" * 65,
    }
    for label, signature in cases.items():
        r = await client.get(CREATE, params={
            "address": CONSUMER_ADDRESS, "nonce": "1", "expiration": future(),
            "signature": signature,
        })
        assert r.status_code == 401, label
        body = r.json()
        assert body["code"] == "invalid_signature", label
        assert body["error"].startswith("Invalid signature"), label
        assert signature not in body["error"]


async def test_replayed_or_lower_nonce_is_401(client: httpx.AsyncClient) -> None:
    assert (await create(client, "10")).status_code == 200
    for nonce in ("10", "9", "10.0"):
        r = await create(client, nonce)
        assert (r.status_code, r.json()["code"]) == (401, "nonce_too_low"), nonce
    assert (await create(client, "10.5")).status_code == 200


async def test_token_of_another_address_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    token = (await create(client, "1")).json()["token"]
    r = await client.request("DELETE", DELETE, params={
        "address": OTHER_ADDRESS, "nonce": "1", "token": token,
        "signature": sign_like_ocean_js(OTHER_ADDRESS + "1", OTHER_KEY),
    })
    assert (r.status_code, r.json()["code"]) == (401, "invalid_token")


async def test_garbage_token(client: httpx.AsyncClient) -> None:
    r = await client.request("DELETE", DELETE, params={
        "address": CONSUMER_ADDRESS, "nonce": "1", "token": "not.a.jwt",
        "signature": sign_like_ocean_js(CONSUMER_ADDRESS + "1", CONSUMER_KEY),
    })
    assert (r.status_code, r.json()["code"]) == (401, "invalid_token")
