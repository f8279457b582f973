"""Who the client is, for rate limiting: the socket peer, or a trusted proxy's word.

``X-Forwarded-For`` is spoofable: any client can send one. It is read only when the
socket peer is one of ``TIDEGATE_TRUSTED_PROXIES``, and then from the right: each
proxy appends the address it saw, so the right-most hop that is *not* a trusted
proxy is the first one no trusted party can have been lied to about. An entry that
is not an IP address stops the walk at the last trusted hop.

An IPv6 client is keyed by its /64 (one subscriber usually holds a whole /64, so
per-/128 keys would give it billions of buckets); IPv4-mapped IPv6 addresses count
as their IPv4 address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Final

from tidegate.settings import IpNetwork

Headers = Iterable[tuple[bytes, bytes]]

_CACHE_LIMIT: Final = 65536
_UNKNOWN: Final = "unknown"


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from an X-Forwarded-For entry or a peer host (with brackets or port)."""
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _key(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class ClientKeys:
    """Maps a request's peer and headers to its client key (cached: the hot path is a dict
    lookup)."""

    def __init__(self, trusted: Sequence[IpNetwork]) -> None:
        self.trusted = tuple(trusted)
        self.peer_keys: dict[str, str] = {}
        """Peer host -> key, for peers that are no trusted proxy (read by the gate)."""
        self._trusted_peers: dict[str, bool] = {}
        self._forwarded: dict[bytes, str] = {}

    def key(self, client: tuple[str, int] | None, headers: Headers) -> str:
        """The key of a request from ``client`` (the ASGI ``(host, port)`` of the peer)."""
        host = client[0] if client else ""
        if self.trusted and self._is_trusted_host(host):
            return self._from_forwarded(headers, host)
        key = self.peer_keys.get(host)
        if key is None:
            key = self._peer_key(host)
        return key

    def _peer_key(self, host: str) -> str:
        address = _parse(host) if host else None
        key = _key(address) if address is not None else (host[:64] or _UNKNOWN)
        if len(self.peer_keys) >= _CACHE_LIMIT:
            self.peer_keys.clear()
        self.peer_keys[host] = key
        return key

    def _is_trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address.version == net.version and address in net for net in self.trusted)

    def _is_trusted_host(self, host: str) -> bool:
        known = self._trusted_peers.get(host)
        if known is None:
            address = _parse(host) if host else None
            known = address is not None and self._is_trusted(address)
            if len(self._trusted_peers) >= _CACHE_LIMIT:
                self._trusted_peers.clear()
            self._trusted_peers[host] = known
        return known

    def _from_forwarded(self, headers: Headers, peer: str) -> str:
        values = [v for name, v in headers if name == b"x-forwarded-for"]
        if not values:
            return self.peer_keys.get(peer) or self._peer_key(peer)
        raw = b",".join(values)
        key = self._forwarded.get(raw)
        if key is None:
            key = self._walk(raw.decode("latin-1"), peer)
            if len(self._forwarded) >= _CACHE_LIMIT:
                self._forwarded.clear()
            self._forwarded[raw] = key
        return key

    def _walk(self, header: str, peer: str) -> str:
        last_trusted = _parse(peer)
        for entry in reversed(header.split(",")):
            address = _parse(entry)
            if address is None:
                break
            if not self._is_trusted(address):
                return _key(address)
            last_trusted = address
        return _key(last_trusted) if last_trusted is not None else (peer[:64] or _UNKNOWN)
