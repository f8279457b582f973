"""Bad input on every route gives a clear 4xx, never a 500 or a hang."""

import httpx
import pytest

ODD_BODIES = [b"", b"null", b"[]", b"1", b'"x"', b"{", b'{"a": {"b": []}}',
              b'{"documentId": 5, "serviceId": [], "consumerAddress": {}, "nonce": true,'
              b' "dataset": 1, "algorithm": "x", "datasets": {}, "compute": 3,'
              b' "chainId": "x", "jobId": [], "index": {}}']
ODD_QUERIES = [{}, {"documentId": "x", "serviceId": "0", "consumerAddress": "0x1",
                    "nonce": "abc", "transferTxId": "zz", "fileIndex": "-3", "jobId": "j",
                    "index": "x", "userAddress": "x", "chainId": "99"}]


@pytest.mark.parametrize("body", ODD_BODIES)
async def test_odd_json_bodies(chain_client: httpx.AsyncClient, body: bytes) -> None:
    endpoints = (await chain_client.get("/")).json()["serviceEndpoints"]
    for name, (method, path) in endpoints.items():
        r = await chain_client.request(method, path, content=body,
                                       headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500 or r.status_code in (200, 201), (name, r.text)
        assert "error" in r.json() or r.status_code < 300, name


@pytest.mark.parametrize("query", ODD_QUERIES)
async def test_odd_queries(chain_client: httpx.AsyncClient, query: dict[str, str]) -> None:
    endpoints = (await chain_client.get("/")).json()["serviceEndpoints"]
    for name, (method, path) in endpoints.items():
        r = await chain_client.request(method, path, params=query)
        assert r.status_code < 500, (name, r.status_code, r.text)
