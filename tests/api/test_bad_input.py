"""Bad input on every route gives a clear 4xx, never a 500 or a hang."""

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.api.schema_samples import BASELINES, HOSTILE, fields, valid, with_value
from tests.api.test_openapi import ACROSS_FIELDS, COMPONENTS, ENDPOINTS, schema_of
from tidegate.api.routes import Endpoint

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


# --- the matrix: every route, every field, hostile values ------------------------------


async def send(client: httpx.AsyncClient, endpoint: Endpoint, data: dict[str, Any],
               as_query: bool) -> httpx.Response:
    path = endpoint.path
    if endpoint.source == "path":
        for name, value in data.items():
            path = path.replace("{" + name + "}", quote(str(value), safe=""))
        return await client.request(endpoint.method, path)
    if as_query:
        query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
        return await client.request(endpoint.method, path, params=query)
    return await client.request(endpoint.method, path, content=json.dumps(data).encode(),
                                headers={"Content-Type": "application/json"})


def named(response: httpx.Response, field: str) -> bool:
    """The field (or one of its own fields) is named in the refusal."""
    body = response.json()
    return field in body["error"] or any(
        key == field or key.startswith(field + ".") for key in body.get("errors", {}))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
async def test_hostile_values_in_every_field(chain_client: httpx.AsyncClient,
                                             endpoint: Endpoint) -> None:
    """Unicode digits, 20- and 5,000-digit numbers, NaN, negatives, 2**256, objects and
    lists for text, traversal DIDs: each answers a 4xx JSON error naming the refused
    field (never a 500), in the query and in a JSON body alike."""
    schema = schema_of(endpoint)
    as_query = [False] if endpoint.source == "json" else [True] \
        if endpoint.source in ("query", "path") else [True, False]
    for path, _ in fields(schema, COMPONENTS):
        for value in HOSTILE:
            try:
                data = with_value(BASELINES[endpoint.name], path, value)
            except (KeyError, IndexError):
                continue
            for query in as_query:
                if query and "." in path:
                    continue  # nested fields only come in a JSON body
                sent = json.loads(json.dumps(data))
                if query or endpoint.source == "path":  # what a query can carry: text
                    sent = {k: v if isinstance(v, str) else json.dumps(v)
                            for k, v in sent.items()}
                r = await send(chain_client, endpoint, data, query)
                where = (endpoint.name, path, str(value)[:20], "query" if query else "json")
                assert r.status_code < 500, (where, r.text)
                assert r.headers["content-type"].startswith("application/json") \
                    or r.status_code < 300, where
                if r.status_code >= 300:
                    assert {"error", "code"} <= set(r.json()), where
                if (endpoint.name, path) in ACROSS_FIELDS or endpoint.source == "path":
                    continue  # checked by its parser / a path is matched, then looked up
                if not valid(schema, sent, COMPONENTS):
                    assert r.status_code == 400 and named(r, path), (where, r.text)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400",
                                     b"123456789012345678901234567890", b"-1", b"1.5"])
async def test_json_number_literals(chain_client: httpx.AsyncClient, literal: bytes) -> None:
    # orjson refuses NaN/Infinity (not JSON) and reads huge integers as floats: both
    # end as a clear 400, never a 500.
    for path, field in (("/api/services/initialize", b"fileIndex"),
                        ("/api/services/nonce", b"userAddress"),
                        ("/api/services/computeResult", b"index")):
        r = await chain_client.request("GET", path, content=b'{"' + field + b'": ' + literal
                                       + b"}", headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (path, literal, r.text)


async def test_the_briefs_examples(chain_client: httpx.AsyncClient) -> None:
    # PUT /compute with an object as signature; GET /compute with a list as jobId.
    r = await chain_client.put("/api/services/compute", json={
        **BASELINES["computeStop"], "signature": {"v": 27}})
    assert (r.status_code, r.json()["errors"]) == (
        400, {"signature": "The signature must be a string."})
    r = await chain_client.request("GET", "/api/services/compute", json={
        **BASELINES["computeStatus"], "jobId": ["a", "b"]})
    assert (r.status_code, r.json()["errors"]) == (400, {"jobId": "The jobId must be a string."})
    # Unicode digits pass str.isdigit(): refused with the field's own code.
    for field, code in (("fileIndex", "invalid_file_index"), ("nonce", "invalid_nonce")):
        for digits in ("²", "١", "9" * 5000):
            r = await chain_client.get("/api/services/download", params={
                **BASELINES["download"], "fileIndex": "0", field: digits})
            assert (r.status_code, r.json()["code"]) == (400, code), (field, digits)
            assert field in r.json()["error"]
    r = await chain_client.get("/api/services/initialize", params={
        **BASELINES["initialize"], "documentId": "did:op:../../../etc/passwd"})
    assert (r.status_code, r.json()["errors"]) == (
        400, {"documentId": "The documentId format is invalid."})


async def test_content_length_and_path_numbers_are_parsed_strictly(
        chain_client: httpx.AsyncClient) -> None:
    for declared in ("²", "9" * 5000, "-1", "1e9"):
        r = await chain_client.post("/api/services/encrypt", params={"chainId": "8996"},
                                    content=b"x",
                                    headers={"Content-Length": declared.encode()})
        assert r.status_code < 500, declared
    for chain_id in ("²", "9" * 5000, "-1", "8996.0"):
        r = await chain_client.get(f"/api/aquarius/chains/status/{quote(chain_id)}")
        assert (r.status_code, r.json()["code"]) == (404, "chain_not_indexed"), chain_id


async def test_unicode_digits_elsewhere_in_requests(chain_client: httpx.AsyncClient) -> None:
    # Aquarius query paging, a query_string term, a posted smartcontract file's chainId:
    # each once reached int()/float() with text that only str.isdigit() accepts.
    for body in ({"query": {"match_all": {}}, "size": "²"}, {"from": "9" * 5000},
                 {"query": {"query_string": {"query": "²"}}}):
        r = await chain_client.post("/api/aquarius/assets/query", json=body)
        assert r.status_code < 500, (body, r.text)
    r = await chain_client.post("/api/services/fileinfo", json={
        "type": "smartcontract", "chainId": "²", "address": "0x" + "11" * 20,
        "abi": {"type": "function", "name": "f", "inputs": [], "stateMutability": "view"}})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_file_object")


# --- headers, encodings and sizes ------------------------------------------------------

ODD_RANGES = ["bytes=abc", "bytes=5-1", "bytes=0-1,5-9", "items=0-1", "bytes=-", "bytes=",
              "bytes=99999999999999999999999-", "bytes=--1", "bytes=0-1,", "bytes=²-3",
              "bytes=" + "1" * 5000 + "-"]


@pytest.mark.parametrize("range_header", ODD_RANGES)
async def test_malformed_and_multi_range_headers(harness: Any, chain_client: httpx.AsyncClient,
                                                 range_header: str) -> None:
    """A Range Tidegate cannot serve exactly is answered 416 (JSON) or ignored (the whole
    file, 200): never a 500, never a wrong slice presented as the one asked for."""
    from tests.api.access_helpers import download_params, order
    from tests.chain_fixtures import ORIGIN_FILES, wait_for_ddo

    asset = harness.publish(files=[{"type": "url", "url": harness.origin + "/big.bin"}])
    harness.give_datatokens(asset)
    await wait_for_ddo(chain_client, asset.did)
    tx = await order(chain_client, harness, asset)
    r = await chain_client.get("/api/services/download", params=download_params(asset, tx),
                               headers={"Range": range_header.encode()})
    assert r.status_code in (200, 416), (range_header, r.status_code, r.text[:200])
    if r.status_code == 200:
        assert r.content == ORIGIN_FILES["big.bin"]
    else:
        assert r.json()["error"]


async def test_invalid_utf8_in_query_and_body(chain_client: httpx.AsyncClient) -> None:
    endpoints = (await chain_client.get("/")).json()["serviceEndpoints"]
    for name, (method, path) in endpoints.items():
        r = await chain_client.request(method, path + "?documentId=%ff%fe&nonce=%c3%28")
        assert 400 <= r.status_code < 500 or r.status_code in (200, 201), (name, r.text)
        assert r.status_code < 300 or r.json()["error"], name
        r = await chain_client.request(method, path, content=b'{"documentId": "\xff\xfe"}',
                                       headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500 or r.status_code in (200, 201), (name, r.text)
        assert r.status_code < 300 or r.json()["error"], name


async def test_duplicate_parameters_are_refused_or_read_once(
        chain_client: httpx.AsyncClient) -> None:
    """Two values for one parameter: never a 500, and never a signature checked against
    one value while another is used (the nonce below is refused as a whole)."""
    endpoints = (await chain_client.get("/")).json()["serviceEndpoints"]
    for name, (method, path) in endpoints.items():
        r = await chain_client.request(method, path + "?nonce=1&nonce=2&documentId=a"
                                                      "&documentId=b&chainId=8996&chainId=1")
        assert r.status_code < 500, (name, r.status_code, r.text)
        assert r.status_code < 300 or r.json()["error"], name


async def test_oversized_bodies_are_refused(chain_client: httpx.AsyncClient) -> None:
    big = b'{"documentId": "' + b"a" * (20 * 1024 * 1024) + b'"}'
    for method, path in (("POST", "/api/services/initializeCompute"),
                         ("POST", "/api/services/fileinfo"),
                         ("POST", "/api/services/encrypt?chainId=8996"),
                         ("POST", "/api/aquarius/assets/query")):
        r = await chain_client.request(method, path, content=big,
                                       headers={"Content-Type": "application/json"})
        assert r.status_code == 413, (path, r.status_code, r.text[:200])
        assert r.json()["error"]
