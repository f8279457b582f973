"""SSRF through the public, unauthenticated ``POST /fileinfo``: hostile file objects of
every storage type, each aimed at a :class:`~tests.traps.ByteTrap` that proves no
connection was opened and no byte arrived.

Tidegate runs as in production (private addresses refused) unless a test says dev
mode (``TIDEGATE_ALLOW_PRIVATE_URLS=true``, where only the always-forbidden space is
refused). Every host here is a numeric form, an IP literal or ``localhost``, so nothing
is ever looked up in DNS. DNS rebinding and "public first hop" chains need a public
address, which only a private network namespace can give: tests/unit/files/
test_ssrf_netns.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import start_app
from tests.traps import ByteTrap, Origin
from tidegate.settings import Settings

#: The same loopback address in every spelling a URL parser or ``inet_aton`` accepts.
#: ``{port}`` is the trap's port; ``0`` and ``0.0.0.0`` connect to loopback on Linux.
INWARD_HOSTS = [
    "2130706433",  # decimal
    "0x7f000001",  # hex
    "0x7f.0x0.0x0.0x1",
    "0177.0.0.1",  # octal
    "017700000001",
    "0177.1",
    "127.1",  # short forms
    "127.0.1",
    "0",
    "0.0.0.0",
    "127.000.000.001",
    "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]",
    "[::ffff:0.0.0.0]",
    "[::127.0.0.1]",  # IPv4-compatible (deprecated)
    "[64:ff9b::7f00:1]",  # NAT64 of loopback
    "[::1]",
    "localhost",  # /etc/hosts, no DNS
    "LocalHost",
]
#: URLs that put a public-looking name somewhere other than the host.
USERINFO_TRICKS = [
    "http://public@127.0.0.1:{port}/",
    "http://public.example.com@127.0.0.1:{port}/",
    "http://public.example.com:80@127.0.0.1:{port}/",
    "http://user:pass@2130706433:{port}/",
    "http://%70ublic@127.0.0.1:{port}/",
    "http://127.0.0.1:{port}#@public.example.com/",
    "http://127.0.0.1:{port}?@public.example.com/",
    "http://127.0.0.1:{port}/@public.example.com/",
    "http://127.0.0.1%2f@public.example.com:{port}/",
]


@pytest.fixture
def trap() -> Iterator[ByteTrap]:
    with ByteTrap().running() as running:
        yield running


@pytest.fixture
def trap_v6() -> Iterator[ByteTrap]:
    try:
        running = ByteTrap("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    with running.running():
        yield running


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in start_app(settings):
        yield client


@pytest.fixture
async def production(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """Private addresses refused (the default)."""
    async for client in _client(make_settings()):
        yield client


async def fileinfo(client: httpx.AsyncClient, file_object: dict[str, Any]) -> httpx.Response:
    response = await client.post("/api/services/fileinfo", json=file_object)
    assert response.status_code < 500, response.text
    return response


#: fileinfo reasons (files/reasons.py) that mean "refused before any connection".
BEFORE_CONNECTING = {"refused_address", "invalid_url"}


def refused(response: httpx.Response, reasons: set[str] | None = BEFORE_CONNECTING) -> bool:
    """The file is reported invalid for one of ``reasons`` (``None``: any), or the
    object refused with a JSON 4xx."""
    if response.status_code == 200:
        return all(entry["valid"] is False and (reasons is None or entry.get("reason")
                                                in reasons) for entry in response.json())
    return 400 <= response.status_code < 500 and "code" in response.json()


@pytest.mark.parametrize("host", INWARD_HOSTS)
@pytest.mark.parametrize("kind", ["url", "graphql"])
async def test_every_spelling_of_loopback_is_refused_before_connecting(
        production: httpx.AsyncClient, trap: ByteTrap, host: str, kind: str) -> None:
    url = f"http://{host}:{trap.port}/file"
    file_object: dict[str, Any] = {"type": kind, "url": url}
    if kind == "graphql":
        file_object["query"] = "{ x }"
    assert refused(await fileinfo(production, file_object))
    assert trap.untouched


async def test_ipv6_loopback_is_refused_before_connecting(
        production: httpx.AsyncClient, trap_v6: ByteTrap) -> None:
    for host in ("[::1]", "[0:0:0:0:0:0:0:1]", "[::0001]", "localhost"):
        for kind in ("url", "graphql"):
            response = await fileinfo(production, {
                "type": kind, "url": f"http://{host}:{trap_v6.port}/", "query": "{ x }"})
            assert refused(response), (host, kind)
    assert trap_v6.untouched


@pytest.mark.parametrize("template", USERINFO_TRICKS)
async def test_userinfo_tricks_never_reach_the_address_after_the_at(
        production: httpx.AsyncClient, trap: ByteTrap, template: str) -> None:
    url = template.format(port=trap.port)
    assert refused(await fileinfo(production, {"type": "url", "url": url}))
    assert trap.untouched


@pytest.mark.parametrize("kind", ["ipfs", "arweave"])
async def test_a_gateway_in_private_space_is_refused_in_production(
        make_settings: Callable[..., Settings], trap: ByteTrap, kind: str) -> None:
    """A gateway is the operator's, but the policy holds for it too: a gateway on a
    private address is reached only when private addresses are allowed."""
    gateway = f"http://localhost:{trap.port}"
    settings = make_settings(IPFS_GATEWAY=gateway, ARWEAVE_GATEWAY=gateway)
    key = "hash" if kind == "ipfs" else "transactionId"
    async for client in _client(settings):
        assert refused(await fileinfo(client, {"type": kind, key: "QmYwAPJzv5CZsnA"}))
    assert trap.untouched


@pytest.fixture
def gateway() -> Iterator[Origin]:
    """A stand-in IPFS/arweave gateway and file origin (records paths, redirects)."""
    with Origin().running() as running:
        yield running


@pytest.fixture
async def dev_mode(make_settings: Callable[..., Settings],
                   gateway: Origin) -> AsyncIterator[httpx.AsyncClient]:
    """Private addresses allowed (dev mode), both gateways at the local gateway."""
    settings = make_settings(TIDEGATE_ALLOW_PRIVATE_URLS="true", IPFS_GATEWAY=gateway.url,
                             ARWEAVE_GATEWAY=gateway.url, TIDEGATE_READ_TIMEOUT="0.5")
    async for client in _client(settings):
        yield client


#: Names that try to walk off the gateway: to another host, port or path.
ESCAPING_NAMES = [
    "QmX@127.0.0.1:{port}", "QmX@127.0.0.1:{port}/x", "@127.0.0.1:{port}",
    "QmX#@127.0.0.1:{port}", "QmX?@127.0.0.1:{port}", "QmX/../../x", "QmX/%2e%2e/x",
    "QmX\\@127.0.0.1:{port}", "http://127.0.0.1:{port}/", "//127.0.0.1:{port}/",
    "QmX/..", "../ipfs/QmX", "QmX%2f..%2f..", "QmX\r\nHost: 127.0.0.1:{port}",
]


@pytest.mark.parametrize("kind", ["ipfs", "arweave"])
async def test_hashes_and_transaction_ids_cannot_leave_the_gateway(
        dev_mode: httpx.AsyncClient, gateway: Origin, trap: ByteTrap,
        kind: str) -> None:
    """Even where loopback is allowed, a name only ever adds a path on the gateway:
    each hostile one is refused, or fetched from the gateway itself, never the trap."""
    key = "hash" if kind == "ipfs" else "transactionId"
    prefix = "/ipfs/" if kind == "ipfs" else "/"
    for template in ESCAPING_NAMES:
        before = len(gateway.paths)
        response = await fileinfo(dev_mode, {"type": kind, key: template.format(port=trap.port)})
        assert refused(response) or all(path.startswith(prefix) and ".." not in path
                                         for path in gateway.paths[before:]), template
    assert trap.untouched
    assert all(".." not in path for path in gateway.paths)


#: Targets no redirect may reach, even in dev mode: the trap behind 0.0.0.0 forms, the
#: metadata service.
FORBIDDEN_TARGETS = [
    "http://0:{port}/", "http://0.0.0.0:{port}/", "http://[::ffff:0.0.0.0]:{port}/",
    "http://0x0:{port}/", "http://00000:{port}/", "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/", "http://2852039166/", "http://[fe80::1]:{port}/",
]


@pytest.mark.parametrize("target", FORBIDDEN_TARGETS)
@pytest.mark.parametrize("hops", [0, 3])
async def test_a_redirect_chain_never_ends_in_forbidden_space(
        dev_mode: httpx.AsyncClient, gateway: Origin, trap: ByteTrap,
        target: str, hops: int) -> None:
    location = target.format(port=trap.port)
    for kind in ("url", "graphql"):
        before = len(gateway.paths)
        response = await fileinfo(dev_mode, {
            "type": kind, "url": f"{gateway.url}/hop/{hops}?to={location}", "query": "{ x }"})
        assert refused(response), kind
        assert len(gateway.paths) - before == hops + 1  # every allowed hop, nothing more
    assert trap.untouched


async def test_a_redirect_chain_into_private_space_is_refused_in_production(
        production: httpx.AsyncClient, trap: ByteTrap) -> None:
    """In production even the chain's first hop (loopback) is refused: nothing is sent."""
    url = f"http://127.0.0.1:{trap.port}/hop/3?to=http://127.0.0.1:{trap.port}/"
    assert refused(await fileinfo(production, {"type": "url", "url": url}))
    assert trap.untouched


@pytest.mark.parametrize("extra", [
    {"chainId": 1}, {"chainId": "99999"}, {"chainId": 8996, "rpc": "http://127.0.0.1:{port}"},
    {"chainId": 8996, "url": "http://127.0.0.1:{port}/"},
    {"chainId": 8996, "address": "http://127.0.0.1:{port}"},
])
async def test_a_smartcontract_file_reaches_only_the_configured_chain(
        make_settings: Callable[..., Settings], trap: ByteTrap, extra: dict[str, Any]) -> None:
    """The call goes to the configured chain's RPC only (here a dead port): an unknown
    chain is refused and no key of the object names another endpoint."""
    abi = {"name": "f", "type": "function", "stateMutability": "view", "inputs": [],
           "outputs": [{"name": "", "type": "uint256"}]}
    file_object: dict[str, Any] = {"type": "smartcontract", "abi": abi,
                                   "address": "0x" + "01" * 20}
    file_object.update({k: v.format(port=trap.port) if isinstance(v, str) else v
                        for k, v in extra.items()})
    async for client in _client(make_settings(TIDEGATE_ALLOW_PRIVATE_URLS="true")):
        assert refused(await fileinfo(client, file_object), reasons=None)
    assert trap.untouched


async def test_the_trap_counts_what_an_allowed_request_sends(
        dev_mode: httpx.AsyncClient, trap: ByteTrap) -> None:
    """The control: where loopback is allowed, the same trap sees the connection and the
    request bytes, so ``untouched`` above means nothing was sent."""
    await fileinfo(dev_mode, {"type": "url", "url": f"http://0x7f000001:{trap.port}/x"})
    assert trap.connections >= 1 and trap.bytes > 0
