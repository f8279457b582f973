"""Where an outbound asset request may connect, and making it connect only there.

Classification has three tiers, because "private" and "never" are different risks:

* ``PUBLIC``: globally routable unicast; always allowed.
* ``PRIVATE``: loopback, RFC 1918, CGNAT, unique-local, site-local, documentation,
  benchmark and protocol-assignment ranges. Refused unless the operator sets
  ``allow_private_addresses`` (dev mode and tests run their file servers there).
* ``FORBIDDEN``: unspecified, ``0.0.0.0/8``, link-local (which holds the cloud metadata
  service ``169.254.169.254``), multicast, broadcast and reserved space. No file server
  lives there, so these stay refused even when private addresses are allowed: a dev
  box on a cloud VM must not leak its instance credentials.

IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
``64:ff9b::/96`` and 6to4 ``2002::/16``) are judged by the embedded IPv4 address.
Other IPv6 space outside global unicast ``2000::/3`` (and not private above) is forbidden.

Pinning: :class:`PinnedAsyncClient` connects only to the addresses of the
:class:`ConnectionPin` active (via :func:`pinned`) in the sending task, and never
resolves a name itself. The URL keeps its hostname, so ``Host``, SNI, the certificate
hostname check and the connection pool (keyed by hostname) all stay correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: An async callable mapping a hostname to its IP addresses as strings.
Resolver = Callable[[str], Awaitable[list[str]]]

__all__ = [
    "AddressClass",
    "ConnectionPin",
    "IPAddress",
    "PinnedAsyncClient",
    "Resolver",
    "classify_address",
    "is_allowed",
    "is_public_address",
    "pinned",
    "system_resolver",
]


class AddressClass(enum.Enum):
    """How far an address may be trusted as a connection target."""

    PUBLIC = "public"
    PRIVATE = "private"
    FORBIDDEN = "forbidden"


def _v4(*cidrs: str) -> tuple[ipaddress.IPv4Network, ...]:
    return tuple(ipaddress.IPv4Network(cidr) for cidr in cidrs)


def _v6(*cidrs: str) -> tuple[ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.IPv6Network(cidr) for cidr in cidrs)


_V4_FORBIDDEN = _v4(
    "0.0.0.0/8",  # "this network", includes the unspecified address
    "169.254.0.0/16",  # link-local, cloud metadata endpoints
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, includes the limited broadcast 255.255.255.255
)
_V4_PRIVATE = _v4(
    "10.0.0.0/8",
    "100.64.0.0/10",  # carrier-grade NAT: reaches other tenants of the provider
    "127.0.0.0/8",
    "172.16.0.0/12",
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # TEST-NET-1
    "192.88.99.0/24",  # deprecated 6to4 relay anycast
    "192.168.0.0/16",
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # TEST-NET-2
    "203.0.113.0/24",  # TEST-NET-3
)
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_PRIVATE = _v6(
    "::1/128",
    "fc00::/7",  # unique local
    "fec0::/10",  # deprecated site-local
    "64:ff9b:1::/48",  # local-use NAT64
    # Inside 2000::/3 but not globally reachable:
    "2001::/23",  # IETF protocol assignments, includes Teredo 2001::/32
    "2001:db8::/32",  # documentation
    "3fff::/20",  # documentation (RFC 9637)
)
_V6_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _in_any(
    ip: IPAddress, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    return any(ip in network for network in networks)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a translation prefix would deliver the packets to, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _V6_NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _classify_v4(ip: ipaddress.IPv4Address) -> AddressClass:
    if _in_any(ip, _V4_FORBIDDEN):
        return AddressClass.FORBIDDEN
    # ``is_global`` is a second opinion from the stdlib tables, in case ours miss a range.
    if _in_any(ip, _V4_PRIVATE) or not ip.is_global:
        return AddressClass.PRIVATE
    return AddressClass.PUBLIC


def classify_address(ip: IPAddress) -> AddressClass:
    """Classify ``ip`` into one of the three tiers described in the module docstring."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _classify_v4(ip)
    embedded = _embedded_v4(ip)
    if embedded is not None:
        return _classify_v4(embedded)
    if _in_any(ip, _V6_PRIVATE):
        return AddressClass.PRIVATE
    if ip not in _V6_GLOBAL_UNICAST:
        # ::, ::/96 (IPv4-compatible), 100::/64, link-local, multicast, unassigned space.
        return AddressClass.FORBIDDEN
    # Python 3.11's ``is_global`` ignores embedded IPv4, which was handled above.
    return AddressClass.PUBLIC if ip.is_global else AddressClass.PRIVATE


def is_public_address(ip: IPAddress) -> bool:
    """True only for a globally routable unicast address (see the module docstring)."""
    return classify_address(ip) is AddressClass.PUBLIC


def is_allowed(ip: IPAddress, *, allow_private_addresses: bool) -> bool:
    """Whether a connection to ``ip`` is permitted under the given setting."""
    tier = classify_address(ip)
    if tier is AddressClass.PUBLIC:
        return True
    return tier is AddressClass.PRIVATE and allow_private_addresses


async def system_resolver(host: str) -> list[str]:
    """Resolve ``host`` (A and AAAA) with the system resolver; raises ``OSError`` on failure."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class ConnectionPin:
    """The checked addresses a new connection to ``host:port`` may use, tried in order.

    ``host`` is the URL's ASCII host as httpx sends it (``raw_host``, no brackets).
    """

    host: str
    port: int
    addresses: tuple[str, ...]


# Read by the network backend in the sending task: httpcore opens connections lazily
# inside the task that sends the request, so a context variable reaches it.
_PIN: contextvars.ContextVar[ConnectionPin | None] = contextvars.ContextVar(
    "tidegate_connection_pin", default=None
)


@contextlib.contextmanager
def pinned(pin: ConnectionPin) -> Iterator[None]:
    """Let requests sent inside this block connect to ``pin``'s addresses only."""
    token = _PIN.set(pin)
    try:
        yield
    finally:
        _PIN.reset(token)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to the pinned addresses of the current task; never resolves names."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _PIN.get()
        if pin is None or pin.host != host or pin.port != port:
            # Fail closed: an unchecked connection is exactly the SSRF hole we prevent.
            raise httpcore.ConnectError("connection target was not checked")
        failure: Exception = httpcore.ConnectError("no address to connect to")
        for address in pin.addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, ssl_context: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx has no public hook for the network backend, so swap in the pool httpx 0.28
        # builds, plus our backend. The tests fail if a new httpx version breaks this.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(),
        )


class PinnedAsyncClient(httpx.AsyncClient):
    """An httpx client that connects only to pinned, checked addresses.

    Built once by the app (it pools connections per hostname) and closed at shutdown;
    ``SafeFetcher`` requires it. It ignores proxy environment variables and never
    follows redirects. A request sent outside :func:`pinned` fails to connect.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        context = ssl_context if ssl_context is not None else httpx.create_ssl_context()
        pool_limits = limits or httpx.Limits(max_connections=200, max_keepalive_connections=50)
        super().__init__(
            transport=_PinnedTransport(context, pool_limits),
            headers=headers,
            follow_redirects=False,
            trust_env=False,
        )
