"""The client key: the socket peer, X-Forwarded-For only through trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest

from tidegate.ratelimit.clients import ClientKeys

Request = tuple[tuple[str, int] | None, list[tuple[bytes, bytes]]]


def scope(peer: str | None, *forwarded: str) -> Request:
    return ((peer, 40000) if peer is not None else None,
            [(b"host", b"x")] + [(b"x-forwarded-for", f.encode()) for f in forwarded])


def keys(*trusted: str) -> ClientKeys:
    return ClientKeys([ipaddress.ip_network(t) for t in trusted])


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_claims() -> None:
    k = keys()
    assert k.key(*scope("203.0.113.7")) == "203.0.113.7"
    assert k.key(*scope("203.0.113.7", "198.51.100.1")) == "203.0.113.7"
    assert k.key(*scope("203.0.113.7", "1.1.1.1, 2.2.2.2")) == "203.0.113.7"


def test_a_trusted_proxy_is_believed_from_the_right() -> None:
    k = keys("10.0.0.0/8", "192.0.2.1/32")
    # The proxy appended the address it saw; the client prepended a lie.
    assert k.key(*scope("10.1.2.3", "6.6.6.6, 198.51.100.4")) == "198.51.100.4"
    # Proxies in a chain are skipped, whichever header line they wrote on.
    assert k.key(*scope("10.1.2.3", "6.6.6.6, 198.51.100.4", "192.0.2.1, 10.9.9.9")) \
        == "198.51.100.4"
    # Without a header, the proxy itself is the client.
    assert k.key(*scope("10.1.2.3")) == "10.1.2.3"
    # Every hop trusted: the left-most.
    assert k.key(*scope("10.1.2.3", "10.4.4.4, 10.5.5.5")) == "10.4.4.4"
    # A hop that is no address stops the walk at the last trusted one.
    assert k.key(*scope("10.1.2.3", "198.51.100.4, garbage, 10.7.7.7")) == "10.7.7.7"
    assert k.key(*scope("10.1.2.3", "unknown")) == "10.1.2.3"
    # Ports and brackets some proxies add.
    assert k.key(*scope("10.1.2.3", "198.51.100.9:5555")) == "198.51.100.9"
    assert k.key(*scope("10.1.2.3", "[2001:db8:1:2::5]:443")) == "2001:db8:1:2::/64"


def test_an_untrusted_peer_is_not_believed_even_with_proxies_configured() -> None:
    k = keys("10.0.0.0/8")
    assert k.key(*scope("203.0.113.7", "10.1.1.1")) == "203.0.113.7"


@pytest.mark.parametrize(("peer", "key"), [
    ("2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb::/64"),
    ("2001:db8:aa:bb:ffff::1", "2001:db8:aa:bb::/64"),
    ("::ffff:198.51.100.3", "198.51.100.3"),
    ("127.0.0.1", "127.0.0.1"),
])
def test_ipv6_clients_are_keyed_by_their_64(peer: str, key: str) -> None:
    assert keys().key(*scope(peer)) == key


def test_no_peer_or_a_peer_that_is_no_address() -> None:
    k = keys()
    assert k.key(*scope(None)) == "unknown"
    assert k.key(*scope("testclient")) == "testclient"
