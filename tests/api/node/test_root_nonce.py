"""GET / and the nonce, read by ocean.js 8.6.2 and by the classic clients from one process."""

import httpx

from tests.api.node import oceanjs8
from tests.helpers import CONSUMER_ADDRESS, PROVIDER_ADDRESS


async def test_root_serves_both_generations(client: httpx.AsyncClient) -> None:
    root = (await client.get("/", headers=oceanjs8.JSON)).json()
    names = list(root["serviceEndpoints"])
    # ocean.js 8 (isValidProvider) wants providerAddress or providerAddresses; ocean.py both.
    assert root["providerAddress"] == PROVIDER_ADDRESS
    assert root["providerAddresses"] == {"8996": PROVIDER_ADDRESS}
    for name, route in {"fileInfo": ["POST", "/api/services/fileInfo"],
                        "generateAuthToken": ["POST", "/api/services/auth/token"],
                        "invalidateAuthToken": ["POST", "/api/services/auth/token/invalidate"],
                        "directCommand": ["POST", "/directCommand"],
                        "fileinfo": ["POST", "/api/services/fileinfo"]}.items():
        assert root["serviceEndpoints"][name] == route
    # ocean.js takes the first name that matches case-insensitively: the classic
    # `fileinfo` comes first, so ocean.js 3.4.x (also case-insensitive) keeps its route.
    assert names.index("fileinfo") < names.index("fileInfo")
    assert await oceanjs8.endpoint(client, "fileinfo") == ("POST", "/api/services/fileinfo")
    assert await oceanjs8.endpoint(client, "generateAuthToken") == (
        "POST", "/api/services/auth/token")


async def test_nonce_as_ocean_js8_reads_it(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/api/services/nonce?userAddress={CONSUMER_ADDRESS}",
                         headers=oceanjs8.JSON)
    assert r.status_code == 200
    # One request for both generations: a JSON integer, which ocean.js 8 reads with
    # Number() (Ocean Node sends the digits as a string; ocean.py needs a number).
    assert r.json() == {"nonce": 1}
    assert await oceanjs8.next_nonce(client) == "2"


async def test_a_node_signed_request_advances_the_shared_nonce(
        client: httpx.AsyncClient) -> None:
    r = await oceanjs8.encrypt(client, {"a": 1})
    assert r.status_code == 200, r.text
    assert (await client.get(f"/api/services/nonce?userAddress={CONSUMER_ADDRESS}")).json() == {
        "nonce": 2}
    # The same nonce, now used, is refused on the classic side too.
    r = await client.get("/api/services/createAuthToken", params={
        "address": CONSUMER_ADDRESS, "nonce": "2", "expiration": "9999999999",
        "signature": "0x" + "11" * 65})
    assert r.status_code == 401


async def test_root_node_public_key_is_the_provider_key(client: httpx.AsyncClient) -> None:
    """ocean.js 8 reads ``nodePublicKey`` and ECIES-encrypts to it (``eciesencrypt``:
    ``PublicKey.fromHex``, so hex text, with or without ``0x``); the provider key must
    decrypt what it encrypted. The classic keys keep their place and values."""
    import ecies
    from eth_keys import keys

    from tests.helpers import PROVIDER_KEY

    root = (await client.get("/", headers=oceanjs8.JSON)).json()
    expected = keys.PrivateKey(bytes.fromhex(PROVIDER_KEY[2:])).public_key
    assert root["nodePublicKey"] == "0x" + expected.to_compressed_bytes().hex()
    assert list(root)[:5] == ["software", "version", "chainIds", "providerAddresses",
                              "serviceEndpoints"]
    # What ocean.js does with it (eciesjs and eciespy share the format), then what the
    # provider does with its key.
    sealed = ecies.encrypt(root["nodePublicKey"], b'{"registry":"x"}')
    assert ecies.decrypt(PROVIDER_KEY[2:], sealed) == b'{"registry":"x"}'
