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

Pinning: :class:`PinnedAsyncClient` (aiohttp) connects only to the addresses of the
:class:`ConnectionPin` active (via :func:`pinned`) in the sending task, and never
resolves a name itself: its resolver answers with the pin's addresses and its socket
factory refuses any other address or port, both failing closed without a pin. The URL
keeps its hostname, so ``Host``, SNI, the certificate hostname check and the connection
pool (keyed by hostname; see :class:`PinnedAsyncClient` on reuse) all stay correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import aiohttp
import certifi
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult

from tidegate.files.aiohttp_internals import refuse_resend, use_budgeted_reads
from tidegate.files.read_budget import ReadBudget

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

    ``host`` is the URL's ASCII host as it is sent (``raw_host``: IDNA-encoded, no
    brackets around an IPv6 literal).
    """

    host: str
    port: int
    addresses: tuple[str, ...]


# Read by the connector while it opens a connection. aiohttp resolves and connects
# inside the task that sends the request (and any task it starts copies the context),
# so a context variable set around the send reaches both hooks below.
_PIN: contextvars.ContextVar[ConnectionPin | None] = contextvars.ContextVar(
    "tidegate_connection_pin", default=None
)

_UNCHECKED: Final = "connection target was not checked"


@contextlib.contextmanager
def pinned(pin: ConnectionPin) -> Iterator[None]:
    """Let requests sent inside this block connect to ``pin``'s addresses only."""
    token = _PIN.set(pin)
    try:
        yield
    finally:
        _PIN.reset(token)


class _PinnedResolver(AbstractResolver):
    """aiohttp's resolver: answers only with the current pin's addresses, never looks up.

    Fails closed (an ``OSError``, which aiohttp reports as a connect failure) when no
    pin is active or the pin is for another host or port.
    """

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        pin = _PIN.get()
        if pin is None or pin.host != host or pin.port != port:
            raise OSError(_UNCHECKED)
        results: list[ResolveResult] = []
        for address in pin.addresses:
            address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family not in (socket.AF_UNSPEC, address_family):
                continue
            results.append(ResolveResult(
                hostname=host, host=address, port=port, family=address_family, proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            ))
        if not results:
            raise OSError(_UNCHECKED)
        return results

    async def close(self) -> None:
        pass


def _pinned_socket(addr_info: AddrInfoType) -> socket.socket:
    """aiohttp's socket factory: a socket only for an address and port of the current pin.

    Every new connection passes here, including those to an IP literal (which aiohttp
    does not send through the resolver), so nothing unchecked is ever connected to.
    """
    family, kind, proto, _, sockaddr = addr_info
    pin = _PIN.get()
    if pin is None or sockaddr[1] != pin.port or not _pinned_address(str(sockaddr[0]), pin):
        raise OSError(_UNCHECKED)
    return socket.socket(family=family, type=kind, proto=proto)


def _pinned_address(address: str, pin: ConnectionPin) -> bool:
    try:
        target = ipaddress.ip_address(address)
        return any(target == ipaddress.ip_address(item) for item in pin.addresses)
    except ValueError:
        return False


def default_ssl_context() -> ssl.SSLContext:
    """Certificate checks against certifi's CA bundle (the trust httpx gave the relay).

    Not the system store: the bundle is the same on every host and in every image.
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``, which httpx read, are not read here (only
    settings.py reads the environment); a private CA would need a setting.
    """
    return ssl.create_default_context(cafile=certifi.where())


class PinnedAsyncClient:
    """A pooled aiohttp client that connects only to pinned, checked addresses.

    Built once by the app and closed at shutdown (``async with`` or :meth:`aclose`);
    ``SafeFetcher`` requires it. Its ``TCPConnector`` resolves through
    :class:`_PinnedResolver` (no DNS cache) and creates sockets through
    :func:`_pinned_socket`, so a request sent outside :func:`pinned`, or to another host
    or port than the pin's, fails to connect. It ignores proxy environment variables,
    keeps no cookies between requests, never follows redirects, never retries a request
    and opens no unix sockets.

    Keep-alive: idle connections are pooled per (scheme, host, port) for
    ``keepalive_timeout`` seconds and reused without a new connect. Such a connection
    was made to an address that was checked (and allowed) when it was opened; a later
    request to the same host, itself checked first, may reuse it even if the host's
    DNS answer changed since. The pool is not keyed by policy: share a client only
    between fetchers with the same ``FetchPolicy`` (the app builds one of each).

    ``read_bufsize`` is the body buffer per response: past about twice that much
    unread data aiohttp stops reading the socket, so a slow client slows the upstream
    (back-pressure) instead of filling memory. ``read_budget`` is shared by the socket
    reads of all body streams (:mod:`tidegate.files.read_budget`): one download reads
    4 MiB at a time, 200 read 16 KiB each. Clients of one process may share one
    :class:`ReadBudget` (pass the object): all their streams then split it.

    ``limit`` is the most connections the client holds at once (in use or idle); a
    request that finds them all busy waits for one, within the connect timeout. The
    app builds one client per purpose (downloads, probes, compute inputs), so that
    one purpose exhausting its connections cannot starve another.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limit: int = 200,
        keepalive_timeout: float = 5.0,
        read_bufsize: int = 16 * 1024,
        read_budget: int | ReadBudget = 4 * 1024 * 1024,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._ssl_context = ssl_context if ssl_context is not None else default_ssl_context()
        self._limit = limit
        self._keepalive_timeout = keepalive_timeout
        self._read_bufsize = read_bufsize
        self.read_budget = (read_budget if isinstance(read_budget, ReadBudget)
                            else ReadBudget(read_budget))
        self._session: aiohttp.ClientSession | None = None

    @property
    def limit(self) -> int:
        """The most connections this client holds at once."""
        return self._limit

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (created on first use: it needs the running event loop)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                limit_per_host=0,
                keepalive_timeout=self._keepalive_timeout,
                ssl=self._ssl_context,
                resolver=_PinnedResolver(),
                use_dns_cache=False,  # a cached answer would outlive the pin
                socket_factory=_pinned_socket,
                happy_eyeballs_delay=None,  # try the pinned addresses in order
            )
            use_budgeted_reads(connector, self.read_budget)  # aiohttp_internals, item 1
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                read_bufsize=self._read_bufsize,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60),
                # Exactly one request per hop: aiohttp would resend an idempotent
                # request once when the connection drops before the answer.
                middlewares=(refuse_resend,),
            )
        return self._session

    async def aclose(self) -> None:
        """Close the pooled connections (idempotent)."""
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> Self:
        _ = self.session
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
