from collections.abc import Callable

import httpx

from tests.conftest import start_app
from tests.helpers import PROVIDER_ADDRESS
from tidegate.settings import Settings

REFERENCE_NAMES = {
    "nonce": ["GET", "/api/services/nonce"],
    "encrypt": ["POST", "/api/services/encrypt"],
    "create_auth_token": ["GET", "/api/services/createAuthToken"],
    "delete_auth_token": ["DELETE", "/api/services/deleteAuthToken"],
}


async def test_root_document(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200
    body = r.json()
    assert body["chainIds"] == [8996]
    assert body["providerAddresses"] == {"8996": PROVIDER_ADDRESS}
    assert body["providerAddress"] == PROVIDER_ADDRESS
    assert body["software"] == "Tidegate"
    for name, value in REFERENCE_NAMES.items():
        assert body["serviceEndpoints"][name] == value
    # Operational routes are not provider services.
    assert "health" not in body["serviceEndpoints"]


async def test_root_with_json_content_type_and_no_body(client: httpx.AsyncClient) -> None:
    r = await client.get("/", headers={"Content-Type": "application/json"})
    assert r.status_code == 200


async def test_every_service_endpoint_is_routed(client: httpx.AsyncClient) -> None:
    endpoints = (await client.get("/")).json()["serviceEndpoints"]
    for method, path in endpoints.values():
        r = await client.request(method, path)
        assert r.status_code not in (404, 405), path


async def test_mounted_under_prefix_root_also_at_host_root(
    make_settings: Callable[..., Settings],
) -> None:
    async for c in start_app(make_settings(TIDEGATE_ROOT_PATH="/provider")):
        host_root = await c.get("/")
        prefixed = await c.get("/provider/")
        assert host_root.status_code == prefixed.status_code == 200
        assert host_root.json() == prefixed.json()
        nonce = await c.get("/provider/api/services/nonce",
                            params={"userAddress": PROVIDER_ADDRESS})
        assert nonce.status_code == 200
        assert (await c.get("/api/services/nonce")).status_code == 404


async def test_provider_address_only_when_one_key_serves_every_chain(
    make_settings: Callable[..., Settings],
) -> None:
    import json

    from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, PROVIDER_KEY

    settings = make_settings(
        PROVIDER_PRIVATE_KEY=json.dumps({"8996": PROVIDER_KEY, "1": CONSUMER_KEY}),
        NETWORK_URL=json.dumps({"8996": "http://127.0.0.1:9", "1": "http://127.0.0.1:9"}),
    )
    async for c in start_app(settings):
        body = (await c.get("/")).json()
        assert body["chainIds"] == [1, 8996]
        assert body["providerAddresses"] == {"8996": PROVIDER_ADDRESS, "1": CONSUMER_ADDRESS}
        assert "providerAddress" not in body
        # Ocean Node's single node key: not given when the chains' keys differ.
        assert "nodePublicKey" not in body
