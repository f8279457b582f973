import json
from collections.abc import Callable

import httpx
from eth_utils import to_checksum_address

from tests.api.access_helpers import initialize, order
from tests.chain_fixtures import ChainHarness, wait_for_ddo
from tests.conftest import start_app
from tests.helpers import OTHER_ADDRESS, PROVIDER_ADDRESS, PROVIDER_KEY
from tidegate.dev.ocean_txs import set_metadata_state
from tidegate.fees.provider_fees import ProviderFee, verify_provider_fee_signature
from tidegate.settings import Settings


async def test_quote_for_an_access_service(harness: ChainHarness,
                                           chain_client: httpx.AsyncClient) -> None:
    asset = harness.publish()
    await wait_for_ddo(chain_client, asset.did)
    r = await initialize(chain_client, asset)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["datatoken"] == asset.datatoken_address
    assert body["nonce"] == 0
    assert body["computeAddress"] == PROVIDER_ADDRESS
    fee = body["providerFee"]
    assert fee["providerFeeAddress"] == PROVIDER_ADDRESS
    assert fee["providerFeeToken"] == harness.addresses["Ocean"]
    assert fee["providerFeeAmount"] == "0" and fee["validUntil"] == 0 and fee["v"] in (27, 28)
    parsed = ProviderFee.from_json(fee)
    assert verify_provider_fee_signature(parsed, PROVIDER_ADDRESS)
    data = bytes.fromhex(fee["providerData"][2:])
    assert data.startswith(b'{"environment":null,"timestamp":')
    assert data.endswith(f',"dt":"{asset.datatoken_address}","id":"0"}}'.encode())


async def test_valid_order_is_reported(harness: ChainHarness,
                                       chain_client: httpx.AsyncClient) -> None:
    asset = harness.publish()
    harness.give_datatokens(asset)
    await wait_for_ddo(chain_client, asset.did)
    tx = await order(chain_client, harness, asset)
    r = await initialize(chain_client, asset, transferTxId=tx)
    assert r.json() == {"validOrder": tx}
    # An order that is not valid for this asset just gets a new quote.
    r = await initialize(chain_client, asset, transferTxId="0x" + "11" * 32)
    assert "providerFee" in r.json()


async def test_file_index_checks_reachability(harness: ChainHarness,
                                              chain_client: httpx.AsyncClient) -> None:
    asset = harness.publish(files=[{"type": "url", "url": harness.origin + "/data.csv"},
                                   {"type": "url", "url": harness.origin + "/missing"}])
    await wait_for_ddo(chain_client, asset.did)
    assert (await initialize(chain_client, asset, fileIndex=0)).status_code == 200
    r = await initialize(chain_client, asset, fileIndex=1)
    assert (r.status_code, r.json()["code"]) == (400, "file_unavailable")
    r = await initialize(chain_client, asset, fileIndex=2)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_file_index")
    r = await initialize(chain_client, asset, fileIndex=-1)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_file_index")


async def test_refusals(harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    asset = harness.publish(services=("access", "compute"),
                            credentials={"allow": [], "deny": [
                                {"type": "address", "values": [OTHER_ADDRESS.lower()]}]})
    await wait_for_ddo(chain_client, asset.did)
    r = await initialize(chain_client, asset, service_id="1")
    assert (r.status_code, r.json()["code"]) == (400, "use_initialize_compute")
    r = await initialize(chain_client, asset, service_id="9")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_service_id")
    r = await initialize(chain_client, asset, consumerAddress=OTHER_ADDRESS)
    assert (r.status_code, r.json()["code"]) == (400, "credential_in_deny_list")
    r = await chain_client.get("/api/services/initialize", params={
        "documentId": "did:op:" + "0" * 64, "serviceId": "0", "consumerAddress": OTHER_ADDRESS})
    assert (r.status_code, r.json()) == (400, {"error": "Cannot resolve DID",
                                               "code": "did_not_found"})
    r = await chain_client.get("/api/services/initialize")
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"documentId", "serviceId", "consumerAddress"}
    set_metadata_state(harness.txs, harness.publisher, asset.nft_address, 3)
    r = await initialize(chain_client, asset)
    assert (r.status_code, r.json()["code"]) == (400, "asset_not_consumable")


async def test_json_body_on_get_like_the_reference_tests(
        harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    asset = harness.publish()
    await wait_for_ddo(chain_client, asset.did)
    r = await chain_client.request("GET", "/api/services/initialize", json={
        "documentId": asset.did, "serviceId": 0, "consumerAddress": OTHER_ADDRESS})
    assert r.status_code == 200


async def test_quote_uses_the_chain_token_of_a_per_chain_fee_token_map(
        harness: ChainHarness, chain_settings: Callable[..., Settings]) -> None:
    """PROVIDER_FEE_TOKEN as a JSON map: access initialize quotes that chain's token.

    (It used to quote OCEAN: only the single form reached the access fee quote.)
    """
    chain_id = str(harness.chain.chain_id)
    token = to_checksum_address("0x" + "ab" * 20)
    settings = chain_settings(
        PROVIDER_PRIVATE_KEY=json.dumps({chain_id: PROVIDER_KEY}),
        NETWORK_URL=json.dumps({chain_id: harness.rpc.url}),
        PROVIDER_FEE_TOKEN=json.dumps({chain_id: token}),
    )
    asset = harness.publish()
    async for client in start_app(settings):
        await wait_for_ddo(client, asset.did)
        r = await initialize(client, asset)
    assert r.status_code == 200, r.text
    assert r.json()["providerFee"]["providerFeeToken"] == token
