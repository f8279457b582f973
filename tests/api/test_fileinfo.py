"""POST /api/services/fileinfo as ocean.py and ocean.js call it."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.chain_fixtures import ORIGIN_FILES, ChainHarness, wait_for_ddo
from tests.conftest import start_app
from tests.local_http import LocalServer, QuietHandler
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
    assert (r.status_code, r.json()) == (200, [{"index": 0, "valid": False, "type": "url",
                                                "reason": "not_found", "status": 404}])
    assert_no_url(r)


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
    assert (r.status_code, r.json()) == (200, [{"index": 0, "valid": False, "type": "url",
                                                "reason": "refused_address"}])
    assert_no_url(r)


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
    assert (r.status_code, r.json()) == (200, [{"index": 0, "valid": False, "type": "ipfs",
                                                "reason": "unreachable"}])


async def test_listed_in_the_root_document(client: httpx.AsyncClient) -> None:
    endpoints = (await client.get("/")).json()["serviceEndpoints"]
    assert endpoints["fileinfo"] == ["POST", FILEINFO]


# --- why a file is invalid: a reason code, never the URL ------------------------------------


class _Origin(QuietHandler):
    """Answers that make a file invalid, one per path."""

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path in ("/missing", "/gone"):
            self._answer(404 if path == "/missing" else 410)
        elif path == "/forbidden":
            self._answer(403)
        elif path == "/broken":
            self._answer(503)
        elif path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/slow":
            time.sleep(1.5)  # past the app's read timeout
            self._answer(200)
        elif path == "/cut.bin":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(b"only ten b")
            self.close_connection = True
        elif path == "/":
            # 200 and nothing known: no type, no length (the body ends with the connection),
            # no file name in the URL.
            self.send_response_only(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
        else:
            self._answer(200)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def failing_origin() -> Iterator[str]:
    with LocalServer(_Origin).running() as server:
        yield server.url


@pytest.fixture
async def probe_client(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[httpx.AsyncClient]:
    """May fetch from loopback; a short read timeout for the slow origin."""
    async for client in start_app(make_settings(TIDEGATE_ALLOW_PRIVATE_URLS="true",
                                                TIDEGATE_READ_TIMEOUT="0.5")):
        yield client


def closed_port() -> int:
    with socket.socket() as probe:  # nobody listens once it is closed
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("path", "reason", "status"), [
    ("/missing", "not_found", 404),
    ("/gone", "not_found", 410),
    ("/forbidden", "forbidden", 403),
    ("/broken", "bad_status", 503),
    ("/loop", "too_many_redirects", None),
    ("/slow", "timeout", None),
    ("/", "no_details", None),
])
async def test_invalid_files_carry_a_reason_never_the_url(
        failing_origin: str, probe_client: httpx.AsyncClient, path: str, reason: str,
        status: int | None) -> None:
    r = await probe_client.post(FILEINFO, json={"type": "url", "url": failing_origin + path})
    assert r.status_code == 200, r.text
    expected = {"index": 0, "valid": False, "type": "url", "reason": reason}
    if status is not None:
        expected["status"] = status
    assert r.json() == [expected]
    assert_no_url(r)


async def test_a_body_that_breaks_off_while_hashed_is_interrupted(
        failing_origin: str, probe_client: httpx.AsyncClient) -> None:
    url = failing_origin + "/cut.bin"
    r = await probe_client.post(FILEINFO, json={"type": "url", "url": url, "checksum": True})
    assert r.json() == [{"index": 0, "valid": False, "type": "url", "reason": "interrupted"}]
    assert_no_url(r)
    # Without a checksum only the head is read: the file looks fine.
    r = await probe_client.post(FILEINFO, json={"type": "url", "url": url})
    assert (r.json()[0]["valid"], r.json()[0]["contentLength"]) == (True, "100000")


@pytest.mark.parametrize(("url", "reason"), [
    (f"http://127.0.0.1:{closed_port()}/data.csv", "unreachable"),
    ("http://no-such-host.invalid/data.csv", "unresolved_host"),
    ("data.csv", "invalid_url"),
    ("http://user:secret@127.0.0.1/data.csv", "invalid_url"),
])
async def test_urls_that_cannot_be_fetched(probe_client: httpx.AsyncClient, url: str,
                                           reason: str) -> None:
    r = await probe_client.post(FILEINFO, json={"type": "url", "url": url})
    assert r.json() == [{"index": 0, "valid": False, "type": "url", "reason": reason}]
    assert_no_url(r)
    assert "secret" not in r.text and "no-such-host" not in r.text


async def test_each_file_of_a_list_has_its_own_reason(
        harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    asset = harness.publish(files=[{"type": "url", "url": harness.origin + "/data.csv"},
                                   {"type": "url", "url": harness.origin + "/nope.csv"},
                                   {"type": "url", "url": "http://no-such-host.invalid/x"}])
    await wait_for_ddo(chain_client, asset.did)
    r = await chain_client.post(FILEINFO, json={"did": asset.did, "serviceId": "0"})
    answer = r.json()
    assert answer[0]["valid"] is True and "reason" not in answer[0]
    assert [(a["index"], a.get("reason")) for a in answer[1:]] == [
        (1, "not_found"), (2, "unresolved_host")]
    assert_no_url(r)

