"""POST /api/services/fileinfo as ocean.py and ocean.js call it."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.chain_fixtures import ORIGIN_FILES, ChainHarness, wait_for_ddo
from tests.conftest import start_app
from tidegate.dev.demo_origin import serve_directory
from tidegate.settings import Settings

FILEINFO = "/api/services/fileinfo"
CSV = ORIGIN_FILES["data.csv"]
BIG = ORIGIN_FILES["big.bin"]


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[str]:
    """A local file server (the chain harness has one too; this one needs no chain)."""
    root = tmp_path / "files"
    root.mkdir()
    (root / "data.csv").write_bytes(CSV)
    server, url = serve_directory(root)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def open_client(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[httpx.AsyncClient]:
    """An app without chain that may fetch from loopback (the test origin)."""
    async for client in start_app(make_settings(TIDEGATE_ALLOW_PRIVATE_URLS="true",
                                                IPFS_GATEWAY="http://127.0.0.1:9")):
        yield client


def assert_no_url(response: httpx.Response) -> None:
    assert "http" not in response.text and "127.0.0.1" not in response.text


# --- a published asset ---------------------------------------------------------------------


async def test_fileinfo_of_a_published_service(harness: ChainHarness,
                                               chain_client: httpx.AsyncClient) -> None:
    asset = harness.publish(files=[{"type": "url", "url": harness.origin + "/data.csv"},
                                   {"type": "url", "url": harness.origin + "/big.bin",
                                    "method": "GET"}])
    await wait_for_ddo(chain_client, asset.did)
    r = await chain_client.post(FILEINFO, json={"did": asset.did, "serviceId": "0",
                                                "checksum": False})
    assert r.status_code == 200, r.text
    assert r.json() == [
        {"index": 0, "valid": True, "type": "url", "contentLength": str(len(CSV)),
         "contentType": "text/csv", "filename": "data.csv"},
        {"index": 1, "valid": True, "type": "url", "contentLength": str(len(BIG)),
         "contentType": "application/octet-stream", "filename": "big.bin"},
    ]
    # ocean.py: checksum 1; both files are below the default 5 MiB limit.
    r = await chain_client.post(FILEINFO, json={"did": asset.did, "serviceId": "0",
                                                "checksum": 1, "userdata": {"a": 1}})
    assert [item["checksum"] for item in r.json()] == [hashlib.sha256(CSV).hexdigest(),
                                                       hashlib.sha256(BIG).hexdigest()]
    assert {item["checksumType"] for item in r.json()} == {"sha256"}
    # Query parameters work as well (strings).
    r = await chain_client.post(FILEINFO, params={"did": asset.did, "serviceId": "0",
                                                  "checksum": "true"})
    assert r.status_code == 200 and "checksum" in r.json()[1]


async def test_unknown_service_and_unreachable_files(harness: ChainHarness,
                                                     chain_client: httpx.AsyncClient) -> None:
    asset = harness.publish(files=[{"type": "url", "url": harness.origin + "/nope.csv"}])
    await wait_for_ddo(chain_client, asset.did)
    r = await chain_client.post(FILEINFO, json={"did": asset.did, "serviceId": "7"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_service_id")
    r = await chain_client.post(FILEINFO, json={"did": asset.did, "serviceId": "0"})
    assert (r.status_code, r.json()) == (200, [{"index": 0, "valid": False, "type": "url"}])


# --- a bare file object ----------------------------------------------------------------------


async def test_bare_file_object(origin: str, open_client: httpx.AsyncClient) -> None:
    # ocean.js: the file object plus checksum (false is always sent).
    r = await open_client.post(FILEINFO, json={"type": "url", "url": origin + "/data.csv",
                                               "method": "GET", "checksum": False})
    assert r.status_code == 200, r.text
    assert r.json() == [{"index": 0, "valid": True, "type": "url",
                         "contentLength": str(len(CSV)), "contentType": "text/csv",
                         "filename": "data.csv"}]
    for truthy in (True, 1, "true", "1"):
        r = await open_client.post(FILEINFO, json={"type": "url", "url": origin + "/data.csv",
                                                   "checksum": truthy})
        assert r.json()[0]["checksum"] == hashlib.sha256(CSV).hexdigest(), truthy
    for falsy in (False, 0, "false", "0", None):
        r = await open_client.post(FILEINFO, json={"type": "url", "url": origin + "/data.csv",
                                                   "checksum": falsy})
        assert "checksum" not in r.json()[0], falsy


async def test_private_origin_is_invalid_by_default(origin: str,
                                                    client: httpx.AsyncClient) -> None:
    r = await client.post(FILEINFO, json={"type": "url", "url": origin + "/data.csv"})
    assert (r.status_code, r.json()) == (200, [{"index": 0, "valid": False, "type": "url"}])


async def test_unknown_did(client: httpx.AsyncClient) -> None:
    r = await client.post(FILEINFO, json={"did": "did:op:" + "0" * 64, "serviceId": "0"})
    assert r.status_code == 400
    assert r.json() == {"error": "Cannot resolve DID", "code": "did_not_found"}


MALFORMED = [
    ({"type": "url", "url": "https://example.com/a", "method": "delete"}, "Unsafe method delete."),
    ({"type": "graphql", "url": "https://example.com/graphql"}, "missing graphql query"),
    ({"type": "url", "url": "https://example.com/a", "headers": "X-A: b"},
     "malformed file object."),
    ({"type": "smartcontract", "address": "0x" + "11" * 20, "abi": {"type": "event"}},
     "invalid abi"),
]


async def test_malformed_file_object(client: httpx.AsyncClient) -> None:
    # One app for all cases (an app start costs more than the requests).
    for body, message in MALFORMED:
        r = await client.post(FILEINFO, json=body)
        assert (r.status_code, r.json()) == (400, {"error": message,
                                                   "code": "invalid_file_object"}), body
        assert_no_url(r)


NEITHER = {"did": "The did field is required when type is not present.",
           "type": "The type field is required when did is not present.",
           "serviceId": "The serviceId field is required when type is not present."}
INVALID = [
    ({}, NEITHER),
    ({"checksum": True, "userdata": {"a": 1}}, NEITHER),
    ({"did": "did:foo:1", "serviceId": "0"}, {"did": "The did format is invalid."}),
    ({"did": 5, "serviceId": "0"}, {"did": "The did format is invalid."}),
    ({"did": "did:op:abc"},
     {"serviceId": "The serviceId field is required when type is not present."}),
    ({"type": "x"}, {"type": "The selected type is invalid."}),
    ({"type": "url"}, {"url": "The url field is required when type is url."}),
    ({"type": "ipfs", "hash": ""}, {"hash": "The hash field is required when type is ipfs."}),
    ({"type": "arweave"},
     {"transactionId": "The transactionId field is required when type is arweave."}),
]


async def test_validation(client: httpx.AsyncClient) -> None:
    for body, errors in INVALID:
        r = await client.post(FILEINFO, json=body)
        assert r.status_code == 400, body
        assert r.json() == {"error": "Validation error", "code": "validation_error",
                            "errors": errors}, body


async def test_empty_requests_are_400_never_5xx(client: httpx.AsyncClient) -> None:
    r = await client.post(FILEINFO, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (400, "validation_error")
    r = await client.post(FILEINFO, content=b"[1]", headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_json")
    # fileinfo is POST only (as the reference): a GET is a JSON 405, not a crash.
    r = await client.get(FILEINFO, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")


async def test_missing_gateway_is_503(client: httpx.AsyncClient,
                                      open_client: httpx.AsyncClient) -> None:
    r = await client.post(FILEINFO, json={"type": "ipfs", "hash": "QmHash"})
    assert (r.status_code, r.json()["code"]) == (503, "gateway_not_configured")
    assert "IPFS_GATEWAY" in r.json()["error"]
    # With a gateway (that does not answer) the file is just invalid.
    r = await open_client.post(FILEINFO, json={"type": "ipfs", "hash": "QmHash"})
    assert (r.status_code, r.json()) == (200, [{"index": 0, "valid": False, "type": "ipfs"}])


async def test_listed_in_the_root_document(client: httpx.AsyncClient) -> None:
    endpoints = (await client.get("/")).json()["serviceEndpoints"]
    assert endpoints["fileinfo"] == ["POST", FILEINFO]
