"""Aquarius v4 routes beside ddo/query: assets/names, chains/list, chains/status, health."""

from __future__ import annotations

import httpx
import pytest

from tests.chain_fixtures import ChainHarness, wait_for_ddo

NAMES = "/api/aquarius/assets/names"
UNKNOWN_DID = "did:op:" + "0" * 64


async def test_names_of_indexed_and_unknown_dids(harness: ChainHarness,
                                                 chain_client: httpx.AsyncClient) -> None:
    first = harness.publish(name="First dataset")
    second = harness.publish(name="Second dataset")
    await wait_for_ddo(chain_client, first.did)
    ddo = await wait_for_ddo(chain_client, second.did)
    assert ddo["datatokens"][0]["address"] == second.datatoken_address
    assert ddo["stats"] == {"allocated": 0, "orders": 0, "price": {}}
    r = await chain_client.post(NAMES, json={"didList": [first.did, UNKNOWN_DID, second.did,
                                                         first.did]})
    assert r.status_code == 200
    assert r.json() == {first.did: "First dataset", UNKNOWN_DID: "",
                        second.did: "Second dataset"}


@pytest.mark.parametrize(("body", "error"), [
    ({}, "`didList` is required in the request payload."),
    ({"dids": ["x"]}, "`didList` is required in the request payload."),
    ({"didList": []}, "The requested didList can not be empty."),
    ({"didList": ""}, "The requested didList can not be empty."),
    ({"didList": "did:op:1"}, "The didList must be a list."),
    ({"didList": {"a": 1}}, "The didList must be a list."),
    ({"didList": [1, 2]}, "The didList must be a list of DID strings."),
    ([UNKNOWN_DID], "Invalid payload. The request could not be converted into a dict."),
    ("not json", "Invalid payload. The request could not be converted into a dict."),
    (None, "Invalid payload. The request could not be converted into a dict."),
])
async def test_names_refuses_bad_payloads_as_aquarius(
        client: httpx.AsyncClient, body: object, error: str) -> None:
    if body is None:
        r = await client.post(NAMES)
    elif isinstance(body, str):
        r = await client.post(NAMES, content=body, headers={"Content-Type": "application/json"})
    else:
        r = await client.post(NAMES, json=body)
    assert r.status_code == 400
    assert r.json()["error"] == error


async def test_names_reads_the_query_string_first(client: httpx.AsyncClient) -> None:
    r = await client.post(NAMES + "?didList=" + UNKNOWN_DID, json={"didList": [UNKNOWN_DID]})
    assert r.status_code == 400 and r.json()["error"] == "The didList must be a list."


async def test_names_body_is_bounded(client: httpx.AsyncClient) -> None:
    r = await client.post(NAMES, json={"didList": [UNKNOWN_DID] * 20_000})
    assert r.status_code == 413


async def test_chains_list_and_status(harness: ChainHarness,
                                      chain_client: httpx.AsyncClient) -> None:
    asset = harness.publish()
    ddo = await wait_for_ddo(chain_client, asset.did)
    r = await chain_client.get("/api/aquarius/chains/list")
    assert r.status_code == 200 and r.json() == {"8996": True}
    r = await chain_client.get("/api/aquarius/chains/status/8996")
    assert r.status_code == 200
    status = r.json()
    assert set(status) == {"last_block"} and status["last_block"] >= ddo["event"]["block"]


@pytest.mark.parametrize("chain_id", ["1", "abc", "-5", "8996.0"])
async def test_status_of_a_chain_not_indexed_is_404(harness: ChainHarness,
                                                     chain_client: httpx.AsyncClient,
                                                     chain_id: str) -> None:
    r = await chain_client.get(f"/api/aquarius/chains/status/{chain_id}")
    assert r.status_code == 404
    assert r.json()["error"] == f"Chain {chain_id} is not indexed."


async def test_without_the_indexer_no_chain_is_listed(client: httpx.AsyncClient) -> None:
    # The `client` app runs without the indexer (TIDEGATE_INDEXER=false).
    r = await client.get("/api/aquarius/chains/list")
    assert r.status_code == 404 and r.json()["error"] == "No chains found."
    r = await client.get("/api/aquarius/chains/status/8996")
    assert r.status_code == 404 and r.json()["error"] == "Chain 8996 is not indexed."


async def test_health_answers_like_aquarius(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/aquarius/health")
    assert r.status_code == 200 and r.text == "Elasticsearch connected"


async def test_health_when_the_store_is_down(client: httpx.AsyncClient) -> None:
    store = client._transport.app.state.services.store  # type: ignore[attr-defined]

    async def down() -> None:
        raise OSError("the database is gone")

    store.ping = down
    r = await client.get("/api/aquarius/health")
    assert r.status_code == 503 and r.json()["error"] == "Not connected to any database"
