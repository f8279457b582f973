"""File objects: parsing and messages per type, and their one upstream request over real HTTP.

Requests are sent with ``open_file`` through a real ``SafeFetcher`` to a local echo
server (which answers with what it received) or, for smartcontract, to the dev chain.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.chain_fixtures import ChainHarness
from tests.helpers import CONSUMER_ADDRESS
from tests.local_http import LocalServer, QuietHandler, local_fetcher

from tidegate.chain.clients import ChainConfig, Chains, UnsupportedChainError
from tidegate.chain.contracts import load_artifact
from tidegate.chain.rpc import ContractCallError
from tidegate.dev.ocean_txs import ONE_TOKEN
from tidegate.files.objects import (
    ArweaveFile,
    FileObjectError,
    GatewayNotConfiguredError,
    GraphqlFile,
    IpfsFile,
    SmartContractFile,
    StorageContext,
    UrlFile,
    parse_file_object,
)
from tidegate.files.open import FileStream, RangeNotSatisfiableError, open_file
from tidegate.files.safe_fetch import (
    PinnedAsyncClient,
    SafeFetcher,
    UnsafeUrlError,
    UpstreamUnavailableError,
)
from tidegate.files.storages import normalise_userdata, safe_filename

# --- a local echo server ---------------------------------------------------------------


class EchoServer(LocalServer):
    def __init__(self) -> None:
        super().__init__(_EchoHandler)


class _EchoHandler(QuietHandler):
    """Echoes the request as JSON; a few paths behave differently (see ``_special``)."""

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/missing":
            self._send(404, b"<html>not found page</html>", {"Content-Type": "text/html"})
            return
        if parts.path == "/redirect":
            self._send(302, b"", {"Location": "/files/report%20final.csv"})
            return
        if parts.path == "/ranged" and "Range" in self.headers:
            if self.headers["Range"] == "bytes=999-":
                self._send(416, b"bad range", {"Content-Range": "bytes */10"})
                return
            self._send(206, b"0123", {"Content-Range": "bytes 0-3/10",
                                      "Content-Type": "application/octet-stream"})
            return
        echo = {
            "method": self.command,
            "path": parts.path,
            "query": parse_qs(parts.query),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8"),
        }
        self._send(200, json.dumps(echo).encode(), {"Content-Type": "application/json"})


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer().running() as server:
        yield server


async def make_fetcher(allow_private: bool = True) -> tuple[SafeFetcher, PinnedAsyncClient]:
    return local_fetcher(allow_private)


@pytest.fixture
async def ctx(echo: EchoServer) -> AsyncIterator[StorageContext]:
    fetcher, client = await make_fetcher()
    async with client:
        yield StorageContext(ipfs_gateway=echo.url, arweave_gateway=echo.url + "/",
                             chains=Chains({}), fetcher=fetcher, max_checksum_length=1000)


async def read_all(stream: FileStream) -> bytes:
    try:
        return b"".join([chunk async for chunk in stream.iter_bytes()])
    finally:
        await stream.aclose()


async def echoed(file: Any, ctx: StorageContext, **kwargs: Any) -> dict[str, Any]:
    stream = await open_file(file, ctx, **kwargs)
    assert stream.status_code == 200
    result: dict[str, Any] = json.loads(await read_all(stream))
    return result


# --- parsing: every type, every message --------------------------------------------------


@pytest.mark.parametrize(("raw", "message"), [
    (None, "cannot decrypt files for this service."),
    ({}, "cannot decrypt files for this service."),
    ("a string", "malformed file object."),
    ([{"type": "url"}], "malformed file object."),
    ({"url": "https://example.com/a"}, "malformed file object."),
    ({"type": "x"}, "Unsupported type x"),
    ({"type": "URL", "url": "https://example.com/a"}, "Unsupported type URL"),
    ({"type": "https://evil.example/x"}, "Unsupported type <invalid>"),
    ({"type": 3}, "Unsupported type <invalid>"),
    # url
    ({"type": "url"}, "malformed service files, missing required keys."),
    ({"type": "url", "url": ""}, "malformed service files, missing required keys."),
    ({"type": "url", "url": 5}, "malformed file object."),
    ({"type": "url", "url": "https://e.com/a", "method": "delete"}, "Unsafe method delete."),
    ({"type": "url", "url": "https://e.com/a", "method": "DELETE"}, "Unsafe method delete."),
    ({"type": "url", "url": "https://e.com/a", "method": "http://x"},
     "Unsafe method <invalid>."),
    ({"type": "url", "url": "./../dir"},
     "Invalid file name format. It was not possible to get the file name."),
    ({"type": "url", "url": "https://e.com/a", "headers": "Authorization: x"},
     "malformed file object."),
    ({"type": "url", "url": "https://e.com/a", "headers": ["a"]}, "malformed file object."),
    ({"type": "url", "url": "https://e.com/a", "headers": {"X-A": {"nested": 1}}},
     "malformed file object."),
    ({"type": "url", "url": "https://e.com/a", "headers": {"Bad Name": "v"}},
     "malformed file object."),
    ({"type": "url", "url": "https://e.com/a", "headers": {"X-A": "v\r\nX-Injected: 1"}},
     "malformed file object."),
    # ipfs
    ({"type": "ipfs"}, "malformed service files, missing required keys."),
    ({"type": "ipfs", "hash": "Qm../../admin"}, "malformed service files, invalid ipfs hash."),
    ({"type": "ipfs", "hash": "QmX/../secret"}, "malformed service files, invalid ipfs hash."),
    ({"type": "ipfs", "hash": "QmX?x=1"}, "malformed service files, invalid ipfs hash."),
    # arweave
    ({"type": "arweave"}, "malformed service files, missing transactionId."),
    ({"type": "arweave", "transactionId": "../x"},
     "malformed service files, invalid transactionId."),
    # graphql
    ({"type": "graphql", "query": "{a}"}, "missing graphql endpoint"),
    ({"type": "graphql", "url": "https://e.com/graphql"}, "missing graphql query"),
    # smartcontract
    ({"type": "smartcontract", "abi": {}},
     "malformed smartcontract type, missing contract address"),
    ({"type": "smartcontract", "address": "0x12"},
     "malformed smartcontract type, invalid contract address"),
    ({"type": "smartcontract", "address": CONSUMER_ADDRESS, "chainId": "x"},
     "malformed smartcontract type, invalid chainId"),
    ({"type": "smartcontract", "address": CONSUMER_ADDRESS}, "invalid abi"),
    ({"type": "smartcontract", "address": CONSUMER_ADDRESS,
      "abi": {"type": "event", "inputs": []}}, "invalid abi"),
    ({"type": "smartcontract", "address": CONSUMER_ADDRESS,
      "abi": {"type": "function", "name": "f"}}, "invalid abi"),
    ({"type": "smartcontract", "address": CONSUMER_ADDRESS,
      "abi": {"type": "function", "name": "f", "inputs": [{"type": "uint256"}],
              "stateMutability": "view"}}, "invalid abi"),
    ({"type": "smartcontract", "address": CONSUMER_ADDRESS,
      "abi": {"type": "function", "name": "f", "inputs": [], "stateMutability": "nonpayable"}},
     "only view or pure functions are allowed"),
    ({"type": "smartcontract", "address": CONSUMER_ADDRESS,
      "abi": {"type": "function", "inputs": [], "stateMutability": "view"}}, "missing name"),
    ({"type": "smartcontract", "address": CONSUMER_ADDRESS,
      "abi": {"type": "function", "name": "f", "stateMutability": "pure",
              "inputs": [{"name": "who", "type": "address"}]}}, "Missing parameters"),
])
def test_parse_errors(raw: object, message: str) -> None:
    with pytest.raises(FileObjectError) as caught:
        parse_file_object(raw)
    assert caught.value.message == message
    assert caught.value.code == "invalid_file_object"
    assert caught.value.status == 400
    assert "://" not in caught.value.message


def test_smartcontract_missing_one_userparam() -> None:
    raw = {"type": "smartcontract", "address": CONSUMER_ADDRESS, "chainId": 8996,
           "abi": {"type": "function", "name": "f", "stateMutability": "view",
                   "inputs": [{"name": "a", "type": "uint256"}, {"name": "b", "type": "uint256"}]}}
    with pytest.raises(FileObjectError, match="Missing userparam: b"):
        parse_file_object(raw, {"a": 1})
    parsed = parse_file_object(raw, {"a": 1, "b": 0})  # 0 is a value (the reference said no)
    assert isinstance(parsed, SmartContractFile)
    assert parsed.chain_id == 8996 and parsed.name == "f"


def test_parse_each_type() -> None:
    url = parse_file_object({"type": "url", "url": "https://e.com/a.csv", "method": "PoSt",
                             "headers": {"Authorization": "Bearer x", "X-Num": 3}})
    assert isinstance(url, UrlFile)
    assert (url.method, dict(url.headers)) == ("POST", {"Authorization": "Bearer x",
                                                        "X-Num": "3"})
    assert isinstance(parse_file_object({"type": "url", "url": "https://e.com/a"}), UrlFile)
    ipfs = parse_file_object({"type": "ipfs", "hash": "/ipfs/QmAbc/data.csv"})
    assert isinstance(ipfs, IpfsFile) and ipfs.hash == "QmAbc/data.csv"
    arweave = parse_file_object({"type": "arweave", "transactionId": "a-B_c"})
    assert isinstance(arweave, ArweaveFile) and arweave.transaction_id == "a-B_c"
    graphql = parse_file_object({"type": "graphql", "url": "https://e.com/graphql",
                                 "query": "{ a }", "headers": None})
    assert isinstance(graphql, GraphqlFile) and graphql.headers == {}
    legacy = parse_file_object({"type": "smartcontract", "address": CONSUMER_ADDRESS.lower(),
                                "abi": {"type": "function", "name": "f", "inputs": [],
                                        "constant": True}})
    assert isinstance(legacy, SmartContractFile)
    assert legacy.address == CONSUMER_ADDRESS and legacy.chain_id is None


def test_userdata_is_the_requests() -> None:
    raw = {"type": "url", "url": "https://e.com/a", "userdata": {"ignored": 1}}
    assert parse_file_object(raw).userdata is None
    assert parse_file_object(raw, {"a": 1}).userdata == {"a": 1}
    assert parse_file_object(raw, '{"a": 2}').userdata == {"a": 2}
    # Undecodable (or non-object) userdata is dropped, as the reference's download.
    assert normalise_userdata("not json") is None
    assert normalise_userdata("[1, 2]") is None
    assert normalise_userdata({}) is None
    assert normalise_userdata("") is None


@pytest.mark.parametrize(("name", "expected"), [
    ("data.csv", "data.csv"),
    ('a"b;c d.csv', "a_b_c_d.csv"),
    ("..", None),
    ("a..b", "a.b"),
    ("x\r\nSet-Cookie: y", "x__Set-Cookie__y"),
    ("dir\\name", "dir_name"),
    ("", None),
    ("données.csv", "donn_es.csv"),
])
def test_safe_filename(name: str, expected: str | None) -> None:
    result = safe_filename(name)
    if expected is None:
        assert len(result) == 32 and int(result, 16) >= 0  # a uuid4 hex
    else:
        assert result == expected


# --- the one upstream request, over HTTP ----------------------------------------------------


async def test_url_get_headers_and_userdata_as_query(echo: EchoServer,
                                                     ctx: StorageContext) -> None:
    file = parse_file_object(
        {"type": "url", "url": echo.url + "/data/report.json?fixed=1", "method": "get",
         "headers": {"Authorization": "Bearer secret", "X-Num": 7}},
        {"q": "a b", "n": 3, "flag": True, "many": [1, 2], "none": None},
    )
    got = await echoed(file, ctx)
    assert got["method"] == "GET" and got["path"] == "/data/report.json"
    assert got["query"] == {"fixed": ["1"], "q": ["a b"], "n": ["3"], "flag": ["True"],
                            "many": ["1", "2"]}
    assert got["headers"]["authorization"] == "Bearer secret"
    assert got["headers"]["x-num"] == "7"
    assert got["body"] == ""


async def test_url_post_userdata_as_json_body(echo: EchoServer, ctx: StorageContext) -> None:
    file = parse_file_object({"type": "url", "url": echo.url + "/api", "method": "POST",
                              "headers": {"X-Key": "k"}}, '{"a": [1, 2], "b": {"c": "d"}}')
    got = await echoed(file, ctx)
    assert got["method"] == "POST" and got["query"] == {}
    assert json.loads(got["body"]) == {"a": [1, 2], "b": {"c": "d"}}
    assert got["headers"]["content-type"] == "application/json"
    assert got["headers"]["x-key"] == "k"
    # Without userdata a POST has no body.
    got = await echoed(parse_file_object({"type": "url", "url": echo.url + "/api",
                                          "method": "post"}), ctx)
    assert got["body"] == ""


async def test_ipfs_and_arweave_through_local_gateways(echo: EchoServer,
                                                       ctx: StorageContext) -> None:
    got = await echoed(parse_file_object({"type": "ipfs", "hash": "QmHash123/file.csv"},
                                         {"v": "1"}), ctx)
    assert (got["method"], got["path"], got["query"]) == ("GET", "/ipfs/QmHash123/file.csv",
                                                          {"v": ["1"]})
    got = await echoed(parse_file_object({"type": "arweave", "transactionId": "tx_ID-1"}), ctx)
    assert (got["method"], got["path"]) == ("GET", "/tx_ID-1")
    # A gateway given without a trailing slash works the same.
    no_slash = StorageContext(None, echo.url, ctx.chains, ctx.fetcher, 10)
    got = await echoed(parse_file_object({"type": "arweave", "transactionId": "tx2"}),
                       no_slash)
    assert got["path"] == "/tx2"


async def test_missing_gateway_is_a_clear_503(ctx: StorageContext) -> None:
    bare = StorageContext(None, None, ctx.chains, ctx.fetcher, 10)
    for raw in ({"type": "ipfs", "hash": "QmA"}, {"type": "arweave", "transactionId": "t"}):
        with pytest.raises(GatewayNotConfiguredError) as caught:
            await open_file(parse_file_object(raw), bare)
        assert caught.value.status == 503 and caught.value.code == "gateway_not_configured"
    assert "IPFS_GATEWAY" in GatewayNotConfiguredError("No IPFS_GATEWAY defined").message


async def test_graphql_posts_query_and_variables(echo: EchoServer, ctx: StorageContext) -> None:
    raw = {"type": "graphql", "url": echo.url + "/subgraphs/graphql",
           "query": "query($id: ID!) { token(id: $id) { name } }",
           "headers": {"X-Api-Key": "abc"}}
    stream = await open_file(parse_file_object(raw, {"id": "0x1"}), ctx)
    assert len(stream.filename) == 32  # a uuid4 hex, as the reference
    got = json.loads(await read_all(stream))
    assert got["method"] == "POST" and got["path"] == "/subgraphs/graphql"
    assert json.loads(got["body"]) == {"query": raw["query"], "variables": {"id": "0x1"}}
    assert got["headers"]["x-api-key"] == "abc"
    got = await echoed(parse_file_object(raw), ctx)
    assert json.loads(got["body"]) == {"query": raw["query"]}


# --- open_file: status, range, names, errors ----------------------------------------------


async def test_open_url_headers_and_filename_after_redirect(echo: EchoServer,
                                                           ctx: StorageContext) -> None:
    stream = await open_file(parse_file_object({"type": "url", "url": echo.url + "/redirect"}),
                             ctx)
    body = await read_all(stream)
    assert stream.status_code == 200
    assert stream.filename == "report_final.csv"  # the final URL's last segment, made safe
    assert stream.headers["content-type"] == "application/json"
    assert stream.headers["content-length"] == str(len(body))
    assert "content-disposition" not in stream.headers


async def test_open_range_passthrough(echo: EchoServer, ctx: StorageContext) -> None:
    file = parse_file_object({"type": "url", "url": echo.url + "/ranged"})
    stream = await open_file(file, ctx, range_header="bytes=0-3")
    assert (stream.status_code, await read_all(stream)) == (206, b"0123")
    assert stream.headers["content-range"] == "bytes 0-3/10"
    with pytest.raises(RangeNotSatisfiableError) as caught:
        await open_file(file, ctx, range_header="bytes=999-")
    assert caught.value.status == 416
    # The file's own Range wins over the client's.
    own = parse_file_object({"type": "url", "url": echo.url + "/echo",
                             "headers": {"range": "bytes=5-"}})
    got = json.loads(await read_all(await open_file(own, ctx, range_header="bytes=0-1")))
    assert got["headers"]["range"] == "bytes=5-"


async def test_open_upstream_error_is_502_before_any_byte(echo: EchoServer,
                                                         ctx: StorageContext) -> None:
    with pytest.raises(UpstreamUnavailableError) as caught:
        await open_file(parse_file_object({"type": "url", "url": echo.url + "/missing"}), ctx)
    assert caught.value.status == 502
    assert "127.0.0.1" not in caught.value.message and "missing" not in caught.value.message


async def test_open_refuses_private_address_when_not_allowed(echo: EchoServer) -> None:
    fetcher, client = await make_fetcher(allow_private=False)
    async with client:
        strict = StorageContext(None, None, Chains({}), fetcher, 10)
        with pytest.raises(UnsafeUrlError) as caught:
            await open_file(parse_file_object({"type": "url", "url": echo.url + "/x"}), strict)
    assert "127.0.0.1" not in caught.value.message and "http" not in caught.value.message


# --- smartcontract against the dev chain ------------------------------------------------


@pytest.fixture
async def chain_ctx(chain_config: ChainConfig,
                    ctx: StorageContext) -> AsyncIterator[StorageContext]:
    yield StorageContext(None, None, Chains({chain_config.chain_id: chain_config}), ctx.fetcher,
                         1000)


def ocean_function(name: str) -> dict[str, Any]:
    abi = load_artifact("OceanToken").abi
    return dict(next(item for item in abi if item.get("name") == name))


async def test_smartcontract_view_calls(harness: ChainHarness,
                                        chain_ctx: StorageContext) -> None:
    ocean = harness.addresses["Ocean"]
    balance = parse_file_object(
        {"type": "smartcontract", "chainId": harness.chain.chain_id, "address": ocean,
         "abi": ocean_function("balanceOf")},
        {"account": harness.consumer.address.lower()},  # address inputs are checksummed
    )
    stream = await open_file(balance, chain_ctx)
    body = await read_all(stream)
    assert stream.status_code == 200
    assert stream.headers == {"content-type": "application/json",
                              "content-length": str(len(body))}
    assert json.loads(body) == 1000 * ONE_TOKEN
    symbol = parse_file_object({"type": "smartcontract", "address": ocean,
                                "abi": ocean_function("symbol")})  # the only chain
    assert await read_all(await open_file(symbol, chain_ctx)) == b'"OCEAN"'


async def test_smartcontract_failures(harness: ChainHarness, chain_ctx: StorageContext) -> None:
    ocean = harness.addresses["Ocean"]
    bad_arg = parse_file_object({"type": "smartcontract", "address": ocean,
                                 "abi": ocean_function("balanceOf")}, {"account": "nope"})
    with pytest.raises(ContractCallError):
        await open_file(bad_arg, chain_ctx)
    no_contract = parse_file_object({"type": "smartcontract", "address": CONSUMER_ADDRESS,
                                     "abi": ocean_function("decimals")})
    with pytest.raises(ContractCallError):
        await open_file(no_contract, chain_ctx)
    other_chain = parse_file_object({"type": "smartcontract", "chainId": 1, "address": ocean,
                                     "abi": ocean_function("decimals")})
    with pytest.raises(UnsupportedChainError):
        await open_file(other_chain, chain_ctx)


def test_default_headers_are_not_shared() -> None:
    # A parsed file's headers are its own (a range added for one download stays there).
    file = parse_file_object({"type": "url", "url": "https://e.com/a"})
    assert isinstance(file, UrlFile)
    ranged = file.request(None).with_range("bytes=0-1")  # type: ignore[arg-type]
    assert ranged.headers == {"Range": "bytes=0-1"} and file.headers == {}
    assert httpx.URL(ranged.url).host == "e.com"
