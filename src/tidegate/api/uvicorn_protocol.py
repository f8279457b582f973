"""The HTTP/1.1 protocol ``tidegate serve`` runs: uvicorn's httptools protocol, guarded.

Every use of uvicorn's internals is in this module (as ``files/aiohttp_internals.py``
does for aiohttp): uvicorn has no public hook for what happens before a request
reaches the ASGI app, and that is where a slow or malformed client must be stopped.
``uvicorn.run(http="tidegate.api.uvicorn_protocol:GuardedHttpToolsProtocol")`` is
public (``--http`` takes an import string); the subclass relies on
``uvicorn.protocols.http.httptools_impl.HttpToolsProtocol``'s parser callbacks
``on_message_begin`` and ``on_message_complete``, its ``data_received``,
``connection_made``, ``connection_lost``, ``_unset_keepalive_if_required`` and
upgrade helpers, and the attributes ``parser``, ``url``, ``headers``, ``scope``,
``client``, ``transport``, ``cycle`` (with ``scope``, ``disconnected``,
``message_event``, ``response_started``, ``response_complete``), ``server_state`` and
``config.loaded_app``. The canary tests in ``tests/unit/api/test_uvicorn_protocol.py``
fail, naming what changed, after a uvicorn upgrade that breaks one of them. Known to
work with uvicorn 0.54.0 and httptools 0.9.0 (the versions constraints.txt pins).

What it adds (settings in docs/configuration.md, "Inbound limits"):

* a **header timeout**: a request's line and headers must be complete within
  ``header_timeout`` seconds of the connection opening, or of the request's first
  byte on a kept-alive connection (uvicorn has none: slowloris connections stayed
  open indefinitely);
* a **body timeout**: the whole request, body included, within ``body_timeout``
  seconds of its start;
* a cap of ``slow_per_client`` **slow requests** per client address: a request whose
  line, headers or body has been arriving for longer than ``slow_after`` is slow,
  and a client with that many is refused new requests at once;
* limits on the **request target** (path and query string, ``max_url_bytes``) and on
  the **request line and headers** together (``max_header_bytes``): httptools has none;
* **JSON errors**: these refusals and uvicorn's own "Invalid HTTP request" 400s
  answer ``{"error", "code"}`` JSON like every other error (uvicorn's are plain text).

The per-request work is done once per socket read, in ``data_received`` (a few
attribute reads and writes): no parser callback is wrapped, sizes are checked per
read rather than per header, and the timeouts are checked by one timer per worker
that runs a few times a second while requests are in flight. A request that arrives
whole in one read (nearly every GET) is never registered with that timer; one that
outlives its first read is, timed from then (a new connection from its opening).
"""

from __future__ import annotations

import asyncio
import http
import ipaddress
import logging
import weakref
from dataclasses import dataclass
from typing import Any, Final

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HTTP_PROTOCOL", "GuardedHttpToolsProtocol", "InboundLimits", "limits_of"]

#: uvicorn's ``http`` option for this protocol (an import string: it survives the
#: pickling of uvicorn's configuration into ``--workers`` processes).
HTTP_PROTOCOL: Final = "tidegate.api.uvicorn_protocol:GuardedHttpToolsProtocol"

log = logging.getLogger("tidegate.inbound")


@dataclass(frozen=True, slots=True)
class InboundLimits:
    """How long, and how much, a client may take to send one request.

    ``trusted_proxies`` (networks) are exempt from the per-client cap: behind a proxy
    every client shares its address (the proxy is expected to guard its own side).
    """

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    slow_after: float = 2.0
    slow_per_client: int = 16
    max_header_bytes: int = 32 * 1024
    max_url_bytes: int = 16 * 1024
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @property
    def tick(self) -> float:
        """Seconds between two checks of the requests in flight."""
        return max(0.05, min(1.0, self.header_timeout / 4, self.body_timeout / 4,
                             self.slow_after / 2))


def _tidegate_app(app: Any) -> Any:
    """The app that carries ``inbound_limits``, through uvicorn's wrappers (or None)."""
    for _ in range(8):
        if isinstance(getattr(app, "inbound_limits", None), InboundLimits):
            return app
        app = getattr(app, "app", None)
        if app is None:
            break
    return None


def limits_of(app: Any) -> InboundLimits:
    """The limits ``create_app`` attached to the app, else the defaults."""
    found = _tidegate_app(app)
    return found.inbound_limits if found is not None else InboundLimits()


def _refusal_counter(app: Any) -> Any:
    """``tidegate_inbound_refused_total`` of the app's metrics, if it has them."""
    metrics = getattr(getattr(_tidegate_app(app), "state", None), "metrics", None)
    return getattr(metrics, "inbound_refused", None)


class _Watch:
    """The requests in flight on one server (one per uvicorn ``Config``), checked by
    one timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, app: Any) -> None:
        self.loop = loop
        self.limits = limits_of(app)
        self._counter = _refusal_counter(app)
        self.unfinished: set[GuardedHttpToolsProtocol] = set()
        self.slow: dict[str, int] = {}
        self.timer: asyncio.TimerHandle | None = None

    def add(self, protocol: GuardedHttpToolsProtocol) -> None:
        self.unfinished.add(protocol)
        if self.timer is None:
            self.arm()

    def arm(self) -> None:
        self.timer = self.loop.call_later(self.limits.tick, self._sweep)

    def _sweep(self) -> None:
        self.timer = None
        now = self.loop.time()
        limits = self.limits
        for protocol in list(self.unfinished):
            waited = now - protocol._since
            if not protocol._headers_done():
                if waited > limits.header_timeout:
                    protocol._time_out("the request's headers")
                    continue
            elif waited > limits.body_timeout:
                protocol._time_out("the request's body")
                continue
            if waited > limits.slow_after and not protocol._slow and protocol._key:
                protocol._slow = True
                self.slow[protocol._key] = self.slow.get(protocol._key, 0) + 1
        if self.unfinished:
            self.arm()

    def refused(self, code: str, status: int) -> None:
        log.info("refused a request: %s (%d)", code, status)
        if self._counter is not None:
            self._counter.labels(code).inc()

    def done(self, protocol: GuardedHttpToolsProtocol) -> None:
        self.unfinished.discard(protocol)
        if protocol._slow:
            protocol._slow = False
            left = self.slow.get(protocol._key, 1) - 1
            if left > 0:
                self.slow[protocol._key] = left
            else:
                self.slow.pop(protocol._key, None)


_WATCHES: weakref.WeakKeyDictionary[Any, _Watch] = weakref.WeakKeyDictionary()


def _client_key(host: str, limits: InboundLimits) -> str:
    """The per-client key of a peer ("": exempt, a trusted proxy). IPv6 by /64."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in limits.trusted_proxies):
        return ""
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _answer(status: int, code: str, message: str,
            default_headers: list[tuple[bytes, bytes]]) -> bytes:
    body = orjson.dumps({"error": message, "code": code})
    phrase = http.HTTPStatus(status).phrase.encode()
    head = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
    head += [name + b": " + value + b"\r\n" for name, value in default_headers]
    head.append(b"content-type: application/json\r\ncontent-length: %d\r\n"
                b"access-control-allow-origin: *\r\nconnection: close\r\n\r\n" % len(body))
    return b"".join(head) + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of :class:`InboundLimits`.

    Everything per request happens in :meth:`data_received`, once per socket read:
    no parser callback is wrapped (a Python frame per callback would cost every
    request, ``/nonce`` included). Whether a request's headers are complete is read
    from uvicorn's state (it makes the request's cycle, with the request's scope, at
    that moment), and the timeouts are checked by the timer of :class:`_Watch`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        watch = _WATCHES.get(self.config)
        if watch is None:
            watch = _WATCHES[self.config] = _Watch(self.loop, self.config.loaded_app)
        self._watch = watch
        self._limits = watch.limits
        self._max_header_bytes = watch.limits.max_header_bytes
        self._max_url_bytes = watch.limits.max_url_bytes
        self._unfinished = False  # a request is (or may be) arriving
        self._watched = False  # ... and is timed by the watch (it outlived one read)
        self._receiving = False  # bytes of that request have come
        self._since = 0.0
        self._slow = False
        self._key = ""
        self._head_bytes = 0
        self._head_checked = False
        self._refused = False
        self.url = b""  # uvicorn sets it at each request's first byte

    # --- the request's phases ----------------------------------------------------------
    def _start(self) -> None:
        """A request starts arriving (or may: a new connection), timed from now."""
        self._unfinished = True
        self._since = self.loop.time()
        self._watched = True
        self._watch.add(self)

    def _over_cap(self) -> bool:
        """Whether the client has too many slow requests to start one more.

        Checked at a request's first byte, not at connect: answered then, the client
        has sent what it had, and closing does not reset the connection under it.
        """
        key = self._key
        return bool(key) and self._watch.slow.get(key, 0) >= self._limits.slow_per_client

    def _headers_done(self) -> bool:
        """Whether the request being received has all its headers (uvicorn made its
        cycle, with this request's scope, when they were complete)."""
        cycle = self.cycle
        return cycle is not None and cycle.scope is self.scope

    def _finish(self) -> None:
        self._receiving = False
        self._unfinished = False
        if self._watched:
            self._watched = False
            self._watch.done(self)

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` with a JSON error and close the connection.

        When the request was handed to the app already (its head ended in the read
        that went past a limit, or its body is late), the app sees a disconnect and
        what it sends is dropped.
        """
        self._refused = True
        self._finish()
        self._watch.refused(code, status)
        cycle = self.cycle
        if cycle is not None and self._headers_done() and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if not self.transport.is_closing():
            if cycle is None or cycle.response_complete or not cycle.response_started:
                self.transport.write(_answer(status, code, message,
                                             self.server_state.default_headers))
            self.transport.close()

    def _time_out(self, what: str) -> None:
        self._refuse(408, "request_timeout", f"Timed out waiting for {what}.")

    # --- uvicorn's protocol interface --------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._key = _client_key(self.client[0] if self.client else "", self._limits)
        self._start()  # the first request's time starts with the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if not self._receiving:  # the first bytes of a request
            self._receiving = True
            # The next request of a kept-alive connection: timed only if this read
            # does not complete it (below), so a request in one read costs the watch
            # nothing; the read's end is its first byte's time, within one read.
            self._unfinished = True
            self._head_bytes = 0
            self._head_checked = False
            if self._watch.slow and self._over_cap():
                self._refuse(429, "too_many_slow_requests",
                             "Too many unfinished requests from this address: retry later.")
                return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            self._refuse(400, "bad_request", "Invalid HTTP request received.")
            return
        # Sizes are checked once per read, not per header: what was received is
        # bounded by the limit plus one read.
        cycle = self.cycle
        if cycle is None or cycle.scope is not self.scope:  # the head is still arriving
            self._head_bytes += len(data)
            if len(self.url) > self._max_url_bytes:
                self._refuse(414, "uri_too_long", "The request target is too long.")
            elif self._head_bytes > self._max_header_bytes:
                self._refuse(431, "headers_too_large", "The request headers are too large.")
            elif not self._watched:
                self._start()
            return
        if (not self._head_checked and self._head_bytes + len(data) > self._max_header_bytes) \
                or len(self.url) > self._max_url_bytes:
            # The head ended in this read (a body may follow it): measure it exactly.
            self._head_checked = True
            if len(self.url) > self._max_url_bytes:
                self._refuse(414, "uri_too_long", "The request target is too long.")
                return
            if self._head_size() > self._max_header_bytes:
                self._refuse(431, "headers_too_large", "The request headers are too large.")
                return
        if not cycle.more_body or cycle.response_complete:
            self._finish()  # all of the request is in (or answered): no longer timed
        elif not self._watched:
            self._start()  # its body is still to come

    def _head_size(self) -> int:
        """The current request's line and headers, in bytes (as sent, but for spaces)."""
        return len(self.url) + 16 + sum(len(name) + len(value) + 4
                                        for name, value in self.headers)
