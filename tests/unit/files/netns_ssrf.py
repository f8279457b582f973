"""SSRF with a real public address: run only inside a private network namespace.

tests/unit/files/test_ssrf_netns.py starts ``pytest`` on this file under ``unshare -n``
with ``TIDEGATE_NETNS_PUBLIC`` (a globally routable address) put on the namespace's
own loopback device. The namespace has no other interface, so a "public" origin is a
listener on this machine and no packet can leave it. That is what DNS rebinding and
"public first hop, private next" chains need: Tidegate's production policy (private
addresses refused) with an origin it is allowed to reach.

The resolver hook is :class:`SafeFetcher`'s own ``resolver`` argument.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from tests.conftest import start_app
from tests.traps import ByteTrap, Origin

from tidegate.files.safe_fetch import (
    FetchPolicy,
    PinnedAsyncClient,
    SafeFetcher,
    UnsafeUrlError,
    UpstreamUnavailableError,
)
from tidegate.settings import Settings

PUBLIC = os.environ.get("TIDEGATE_NETNS_PUBLIC", "")
pytestmark = pytest.mark.skipif(
    not PUBLIC, reason="only inside the network namespace of test_ssrf_netns.py")


class Rebinding:
    """A resolver hook: the first lookup of a name answers ``first``, later ones ``later``
    (names it does not know fail as the system resolver does)."""

    def __init__(self, first: dict[str, list[str]], later: dict[str, list[str]]) -> None:
        self.first, self.later = first, later
        self.calls: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        table = self.later if host in self.calls else self.first
        self.calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host])


@pytest.fixture
def origin() -> Iterator[Origin]:
    """A file origin on the public address."""
    with Origin(PUBLIC, body=b"public bytes").running() as running:
        yield running


@pytest.fixture
def trap(origin: Origin) -> Iterator[ByteTrap]:
    """A trap on 127.0.0.1 at the origin's port: what a rebinding would reach."""
    with ByteTrap("127.0.0.1", origin.port).running() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[PinnedAsyncClient]:
    async with PinnedAsyncClient() as pinned_client:
        yield pinned_client


def production(client: PinnedAsyncClient, resolver: Rebinding) -> SafeFetcher:
    """The production policy: private addresses refused."""
    return SafeFetcher(client, FetchPolicy(False, connect_timeout=2, read_timeout=2), resolver)


def test_the_public_address_is_public_to_the_policy() -> None:
    from ipaddress import ip_address

    from tidegate.files.address_policy import is_public_address

    assert is_public_address(ip_address(PUBLIC))


async def test_dns_rebinding_first_public_then_private_reaches_only_the_public_origin(
        client: PinnedAsyncClient, origin: Origin, trap: ByteTrap) -> None:
    dns = Rebinding({"rebind.test": [PUBLIC]}, {"rebind.test": ["127.0.0.1"]})
    fetch = production(client, dns)
    body = await fetch.read_limited("GET", f"http://rebind.test:{origin.port}/f", limit=100)
    assert body == b"public bytes"
    assert dns.calls == ["rebind.test"]  # resolved once: the connect used that answer
    # The next request looks up again, gets loopback and is refused before connecting
    # (a pooled keep-alive connection to the public origin is not reused for it).
    with pytest.raises(UnsafeUrlError):
        await fetch.open("GET", f"http://rebind.test:{origin.port}/f")
    assert dns.calls == ["rebind.test", "rebind.test"]
    assert origin.paths == ["/f"]
    assert trap.untouched


async def test_one_private_answer_among_public_ones_refuses_all(
        client: PinnedAsyncClient, origin: Origin, trap: ByteTrap) -> None:
    for answers in ([PUBLIC, "127.0.0.1"], ["127.0.0.1", PUBLIC], [PUBLIC, "::ffff:127.0.0.1"]):
        dns = Rebinding({"both.test": answers}, {"both.test": answers})
        with pytest.raises(UnsafeUrlError):
            await production(client, dns).open("GET", f"http://both.test:{origin.port}/")
    assert origin.paths == []
    assert trap.untouched


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{port}/", "http://2130706433:{port}/", "http://0x7f000001:{port}/",
    "http://0177.0.0.1:{port}/", "http://127.1:{port}/", "http://0:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/", "http://public@127.0.0.1:{port}/",
    "http://inner.test:{port}/", "http://rebind.test:{port}/",
])
@pytest.mark.parametrize("hops", [0, 2])
async def test_a_public_redirect_chain_into_private_space_is_refused(
        client: PinnedAsyncClient, origin: Origin, trap: ByteTrap, target: str,
        hops: int) -> None:
    dns = Rebinding({"files.test": [PUBLIC], "inner.test": ["127.0.0.1"],
                     "rebind.test": [PUBLIC]}, {"files.test": [PUBLIC],
                                                "inner.test": ["127.0.0.1"],
                                                "rebind.test": ["127.0.0.1"]})
    fetch = production(client, dns)
    if "rebind.test" in target:  # its first (public) answer was used up by a fetch
        await fetch.read_limited("GET", f"http://rebind.test:{origin.port}/warm", limit=100)
    location = target.format(port=origin.port)
    with pytest.raises((UnsafeUrlError, UpstreamUnavailableError)):
        await fetch.open("GET", f"http://files.test:{origin.port}/hop/{hops}?to={location}")
    assert len([p for p in origin.paths if p.startswith("/hop/")]) == hops + 1
    assert trap.untouched


@pytest.fixture
async def app(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """Tidegate itself, production policy, its system resolver."""
    async for app_client in start_app(make_settings(TIDEGATE_READ_TIMEOUT="2")):
        yield app_client


async def test_fileinfo_reads_a_public_origin_and_refuses_its_redirect_inward(
        app: httpx.AsyncClient, origin: Origin, trap: ByteTrap) -> None:
    public = f"http://{PUBLIC}:{origin.port}"
    r = await app.post("/api/services/fileinfo", json={"type": "url", "url": public + "/f"})
    assert r.status_code == 200 and r.json()[0]["valid"] is True, r.text
    for inward in (f"http://127.0.0.1:{origin.port}/", f"http://2130706433:{origin.port}/",
                   f"http://0:{origin.port}/", f"http://[::ffff:7f00:1]:{origin.port}/"):
        for kind in ("url", "graphql"):
            r = await app.post("/api/services/fileinfo", json={
                "type": kind, "url": f"{public}/hop/1?to={inward}", "query": "{ x }"})
            [entry] = r.json()
            assert entry["valid"] is False, (inward, r.text)
            assert entry["reason"] == "refused_address", (inward, r.text)  # never tried
    assert trap.untouched
