import httpx

from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, sign_like_ocean_py

NONCE = "/api/services/nonce"


async def test_new_address_has_nonce_one_as_integer(client: httpx.AsyncClient) -> None:
    # The reference answers 1 for an address never seen; ocean.js's tests assert > 0.
    r = await client.get(NONCE, params={"userAddress": CONSUMER_ADDRESS})
    assert r.status_code == 200
    assert r.json() == {"nonce": 1}


async def test_get_writes_nothing(client: httpx.AsyncClient) -> None:
    # Unlike the reference (whose GET stores 1), the GET stores nothing: a first signed
    # request may use nonce 1 itself, and the answer stays 1 until one is accepted.
    for _ in range(2):
        assert (await client.get(NONCE, params={"userAddress": CONSUMER_ADDRESS})).json() \
            == {"nonce": 1}
    r = await client.get("/api/services/createAuthToken", params={
        "address": CONSUMER_ADDRESS, "nonce": "1", "expiration": "9999999999",
        "signature": sign_like_ocean_py(CONSUMER_ADDRESS + "1", CONSUMER_KEY),
    })
    assert r.status_code == 200, r.text
    assert (await client.get(NONCE, params={"userAddress": CONSUMER_ADDRESS})).json() \
        == {"nonce": 1}
    r = await client.get("/api/services/createAuthToken", params={
        "address": CONSUMER_ADDRESS, "nonce": "1", "expiration": "9999999999",
        "signature": sign_like_ocean_py(CONSUMER_ADDRESS + "1", CONSUMER_KEY),
    })
    assert r.status_code == 401, r.text


async def test_nonce_from_json_body_on_get(client: httpx.AsyncClient) -> None:
    r = await client.request("GET", NONCE, json={"userAddress": CONSUMER_ADDRESS})
    assert r.json() == {"nonce": 1}


async def test_nonce_advances_and_any_case_address(client: httpx.AsyncClient) -> None:
    # createAuthToken is a signed endpoint: it consumes the nonce.
    nonce = "1795533623683040263"  # nanoseconds, above 2**53
    r = await client.get("/api/services/createAuthToken", params={
        "address": CONSUMER_ADDRESS.lower(), "nonce": nonce, "expiration": "9999999999",
        "signature": sign_like_ocean_py(CONSUMER_ADDRESS.lower() + nonce, CONSUMER_KEY),
    })
    assert r.status_code == 200, r.text
    for form in (CONSUMER_ADDRESS, CONSUMER_ADDRESS.lower(), CONSUMER_ADDRESS.upper()[2:]):
        got = await client.get(NONCE, params={"userAddress": form if form.startswith("0x")
                                              else "0x" + form})
        assert got.json() == {"nonce": 1795533623683040263}


async def test_missing_and_invalid_address(client: httpx.AsyncClient) -> None:
    r = await client.get(NONCE)
    assert r.status_code == 400
    assert r.json() == {
        "error": "Validation error", "code": "validation_error",
        "errors": {"userAddress": "The userAddress field is required."},
    }
    r = await client.get(NONCE, params={"userAddress": "0x123"})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_address"


async def test_wrong_method_and_bad_json(client: httpx.AsyncClient) -> None:
    r = await client.post(NONCE)
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"
    r = await client.request("GET", NONCE, content=b"{not json",
                             headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_json"


async def test_nonces_are_bounded_to_int64(client: httpx.AsyncClient) -> None:
    # A nonce above int64 was once accepted, and then /nonce (a JSON integer) answered
    # 500 for that address forever; now it is a 400 and the largest one is reported.
    def create(nonce: str) -> dict[str, str]:
        return {"address": CONSUMER_ADDRESS, "nonce": nonce, "expiration": "9999999999",
                "signature": sign_like_ocean_py(CONSUMER_ADDRESS + nonce, CONSUMER_KEY)}

    for huge in (str(2**64), str(2**63), "9" * 39):
        r = await client.get("/api/services/createAuthToken", params=create(huge))
        assert (r.status_code, r.json()["code"]) == (400, "invalid_nonce"), huge
    largest = str(2**63 - 1)
    r = await client.get("/api/services/createAuthToken", params=create(largest))
    assert r.status_code == 200, r.text
    for _ in range(2):  # the fast path, and the endpoint behind it
        r = await client.get(NONCE, params={"userAddress": CONSUMER_ADDRESS})
        assert (r.status_code, r.json()) == (200, {"nonce": 2**63 - 1})
