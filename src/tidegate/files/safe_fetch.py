"""Outbound HTTP for asset bytes: checked addresses, pinned connections, bounded bodies.

Every request for a file's bytes goes through :class:`SafeFetcher`. Per hop it:

1. parses the URL once into the ``yarl.URL`` that is checked and sent
   (:mod:`tidegate.files.urls`) and accepts only ``http``/``https`` URLs with a host
   and without credentials;
2. resolves the host once (A and AAAA) and refuses the request if *any* address is not
   allowed by :mod:`tidegate.files.address_policy` (DNS failure is a refusal too);
3. connects only to those checked addresses (:class:`PinnedAsyncClient`, an aiohttp
   client, never resolves names), so a DNS answer that changes between check and
   connect (rebinding) cannot move the connection. ``Host``, SNI and the certificate
   check use the hostname;
4. follows redirects itself, checking every hop again, up to ``max_redirects``.

Exactly one upstream request is sent per hop (no probes, no retries). Bodies stream in
bounded chunks and are capped by ``max_bytes``; aiohttp stops reading the socket while
the relay has not consumed what it buffered (back-pressure). No exception message or log
line of this module contains a URL, host, address, header or query string.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json as jsonlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from tidegate.errors import BadRequestError, TidegateError, UpstreamError, UpstreamTimeout
from tidegate.files.address_policy import (
    ConnectionPin,
    IPAddress,
    PinnedAsyncClient,
    Resolver,
    is_allowed,
    is_public_address,
    pinned,
    system_resolver,
)
from tidegate.files.aiohttp_internals import stop_read_timer
from tidegate.files.read_budget import ReadBudget
from tidegate.files.urls import (
    DEFAULT_PORTS,
    InvalidUrl,
    join_url,
    parse_url,
    scheme_of,
    with_params,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FetchPolicy",
    "PinnedAsyncClient",
    "Resolver",
    "SafeFetcher",
    "UnsafeUrlError",
    "UpstreamResponse",
    "UpstreamTimeoutError",
    "UpstreamTooLargeError",
    "UpstreamUnavailableError",
    "is_public_address",
    "redact_url",
    "system_resolver",
]

logger = logging.getLogger(__name__)

#: Target size of the chunks :meth:`UpstreamResponse.iter_bytes` yields. Small enough
#: that hundreds of concurrent relays stay light on memory (with the client's 64 KiB
#: ``read_bufsize``), large enough that per-chunk overhead stays low.
DEFAULT_CHUNK_SIZE: Final = 64 * 1024

_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_METHODS: Final = frozenset({"GET", "HEAD", "POST"})
# Framing and routing headers are derived from the URL and body, never taken from a DDO.
_DROPPED_HEADERS: Final = ("host", "content-length", "transfer-encoding", "connection")
# Credentials meant for one origin must not follow a redirect to another.
_CREDENTIAL_HEADERS: Final = ("authorization", "cookie", "proxy-authorization")


class UnsafeUrlError(BadRequestError):
    """The URL may not be fetched: scheme, credentials, address, DNS failure or redirects.

    ``reason`` says which, for fileinfo (:mod:`tidegate.files.reasons`); the HTTP
    ``code`` stays ``unsafe_url`` for every one.
    """

    code = "unsafe_url"

    def __init__(self, message: str, *, reason: str = "invalid_url") -> None:
        super().__init__(message)
        self.reason = reason


class UpstreamUnavailableError(UpstreamError):
    """The file's server could not be reached or broke the protocol (502)."""

    code = "upstream_unavailable"


class UpstreamTimeoutError(UpstreamTimeout):
    """The file's server did not accept the connection or answer within the timeouts (504)."""


class UpstreamTooLargeError(UpstreamError):
    """The file's body exceeds the configured cap.

    502, not 413: the client's request was fine; it is the upstream answer we refuse.
    """

    code = "upstream_too_large"


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Limits for outbound file requests (built from settings by the app).

    ``connect_timeout`` bounds DNS resolution, and TCP connect plus TLS handshake per
    address tried; a wait for a free pooled connection is bounded too.
    ``read_timeout`` bounds each wait for upstream bytes (the answer's head, then each
    read of the body; not while the relay itself is slow to read). ``total_timeout``
    bounds one request from the first hop to the last body byte read (``None``, the
    default for downloads: large files take as long as they take); an origin that
    drips bytes just fast enough to beat ``read_timeout`` cannot hold a connection
    past it (probes of unauthenticated callers set it). ``max_bytes`` caps a body
    (``None``: no cap). ``chunk_size`` is the size of the chunks a body is relayed in
    (memory per stream against throughput; pair it with the client's ``read_bufsize``).
    """

    allow_private_addresses: bool
    connect_timeout: float
    read_timeout: float
    max_redirects: int = 5
    max_bytes: int | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    total_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.total_timeout is not None and self.total_timeout <= 0:
            raise ValueError("total_timeout must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must not be negative")
        if self.max_bytes is not None and self.max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        if self.chunk_size <= 0:
            raise ValueError("chunk_size must be positive")

    def client_timeout(self, addresses: int = 1) -> aiohttp.ClientTimeout:
        """The aiohttp timeout for one hop to a host with ``addresses`` checked addresses.

        ``sock_connect`` bounds each address's TCP connect and TLS handshake;
        ``connect`` bounds the pool wait plus the tries of every address.
        """
        return aiohttp.ClientTimeout(
            total=None,
            connect=self.connect_timeout * (max(1, addresses) + 1),
            sock_connect=self.connect_timeout,
            sock_read=self.read_timeout,
        )


def redact_url(url: str | yarl.URL) -> str:
    """What may be logged about ``url``: its scheme (``"https"``), or ``"<url>"``."""
    scheme = scheme_of(url)
    return scheme if scheme in DEFAULT_PORTS else "<url>"


def _root_cause(exc: BaseException) -> str:
    """Name of the innermost exception type: safe to show, useful to diagnose."""
    seen: BaseException = exc
    for _ in range(16):  # bounded: a chain could loop
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            break
        seen = inner
    return type(seen).__name__


#: What a request or a body read may raise from aiohttp (its messages name the URL).
_TRANSPORT_ERRORS: Final = (aiohttp.ClientError, TimeoutError)


class _PastDeadline(Exception):
    """The request's total time limit (``FetchPolicy.total_timeout``) ran out."""


def _translate(exc: BaseException) -> TidegateError:
    """Our error for an aiohttp failure; the message never includes the URL or host."""
    if isinstance(exc, _PastDeadline):
        return UpstreamTimeoutError("the file's server did not answer within the time limit")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # connect, TLS or pool wait
        return UpstreamTimeoutError("timed out connecting to the file's server")
    if isinstance(exc, TimeoutError):  # sock_read: ServerTimeoutError is a TimeoutError
        return UpstreamTimeoutError("the file's server did not answer in time")
    if isinstance(exc, aiohttp.InvalidURL):
        return UnsafeUrlError("the file URL is not a valid URL")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamUnavailableError(
            f"could not connect to the file's server ({_root_cause(exc)})"
        )
    return UpstreamUnavailableError(f"the file's server failed to answer ({_root_cause(exc)})")


def _parse_url(url: str | yarl.URL) -> yarl.URL:
    """The URL to send, normalised (:mod:`tidegate.files.urls`), or a refusal.

    The edge of the download path: text (or a caller's ``yarl.URL``, rendered and
    parsed again, so that it passes the same checks) becomes the one URL object that
    is checked, pinned and sent.
    """
    try:
        parsed = parse_url(url if isinstance(url, str) else str(url))
    except InvalidUrl:
        raise UnsafeUrlError("the file URL is not a valid URL") from None
    return _allowed(parsed)


def _allowed(parsed: yarl.URL) -> yarl.URL:
    """``parsed`` if the fetcher may send it: http(s), a host, no credentials."""
    if parsed.scheme not in DEFAULT_PORTS:
        raise UnsafeUrlError("only http and https file URLs are allowed")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise UnsafeUrlError("file URLs with credentials are not allowed")
    if not parsed.raw_host:
        raise UnsafeUrlError("the file URL has no host")
    return parsed


def _origin(url: yarl.URL) -> tuple[str, str | None, int | None]:
    return url.scheme, url.raw_host, url.port


def _declared_length(response: aiohttp.ClientResponse) -> int | None:
    """Content-Length when it equals the decoded body size, else None."""
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        return None
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


class UpstreamResponse:
    """The final (non-redirect) answer to one :meth:`SafeFetcher.open`; body unread.

    Always close it (``async with`` or :meth:`aclose`); :meth:`iter_bytes` also closes
    it when the body ends or fails. Closing before the end drops the connection at once
    (nothing more is read); a finished body returns the connection to the pool. The body
    is decoded per ``Content-Encoding`` (the fetcher asks for ``identity`` unless told
    otherwise), so ``Content-Length`` and ``Content-Encoding`` must not be relayed when
    an encoding was applied.
    """

    def __init__(
        self, response: aiohttp.ClientResponse, url: yarl.URL, max_bytes: int | None,
        chunk_size: int = DEFAULT_CHUNK_SIZE, read_timeout: float | None = None,
        budget: ReadBudget | None = None, deadline: float | None = None,
    ) -> None:
        self._response = response
        self._url = url
        self._max_bytes = max_bytes
        self._chunk_size = chunk_size
        self._read_timeout = read_timeout
        self._budget = budget
        self._deadline = deadline
        self._closed = False
        if budget is not None:
            budget.stream_started()  # until aclose: the streams share the read budget

    @property
    def status_code(self) -> int:
        return self._response.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """The answer's headers (case-insensitive; ``[]`` gives the first value)."""
        return self._response.headers

    @property
    def url(self) -> yarl.URL:
        """The final URL after redirects (for a filename). Sensitive: never log it."""
        return self._url

    async def iter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Stream the body in chunks of at most ``chunk_size`` bytes (default: the policy's).

        Every chunk but the last is full: buffered bytes are taken up to ``chunk_size``
        and a short read waits for more (joined once). Raises
        :class:`UpstreamTooLargeError` before yielding any byte past ``max_bytes``, and
        translates transport errors.
        """
        if chunk_size is None:
            chunk_size = self._chunk_size
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        content = self._response.content
        read = self._bounded(content.read)
        received = 0
        try:
            while True:
                chunk = await read(chunk_size)
                if not chunk:
                    break
                if len(chunk) < chunk_size:
                    parts = [chunk]
                    size = len(chunk)
                    while size < chunk_size:
                        more = await read(chunk_size - size)
                        if not more:
                            break
                        parts.append(more)
                        size += len(more)
                    if len(parts) > 1:
                        chunk = b"".join(parts)
                received += len(chunk)
                if self._max_bytes is not None and received > self._max_bytes:
                    raise UpstreamTooLargeError("the file is larger than the allowed maximum")
                yield chunk
                if len(chunk) < chunk_size:
                    break  # the body ended while filling this chunk
        except (*_TRANSPORT_ERRORS, _PastDeadline) as exc:
            raise _translate(exc) from None
        finally:
            await self.aclose()

    async def iter_pieces(self) -> AsyncIterator[bytes]:
        """Stream the body as it arrives, without re-chunking (the relay's path).

        Each piece is what the parser produced from one socket read (16 KiB–4 MiB, from
        the client's read budget), handed on without a copy: slicing it into
        fixed-size chunks would copy every byte once more. Memory stays bounded by
        the client's read buffer (back-pressure pauses the socket). The read timeout
        applies to each wait for upstream bytes, never while the caller is slow to
        take them. Same cap, error translation and closing as :meth:`iter_bytes`.
        """
        content = self._response.content
        if self._deadline is not None:
            # A bounded request (a probe): every read is timed against the deadline.
            pieces = self._pieces_until_deadline()
            try:
                async for piece in pieces:
                    yield piece
            finally:
                await pieces.aclose()  # closed with us, not when collected
            return
        if self._read_timeout is not None:
            # aiohttp re-arms its read timer on every socket read: at hundreds of
            # streams that was 9% of the loop. Time only the waits instead.
            stop_read_timer(self._response)
        received = 0
        try:
            while True:
                if self._read_timeout is None or content.total_bytes > received \
                        or content.is_eof():
                    piece = await content.readany()  # aiohttp's timer, or bytes are here
                else:
                    async with asyncio.timeout(self._read_timeout):
                        piece = await content.readany()
                if not piece:
                    break
                received += len(piece)
                if self._max_bytes is not None and received > self._max_bytes:
                    raise UpstreamTooLargeError("the file is larger than the allowed maximum")
                yield piece
        except _TRANSPORT_ERRORS as exc:
            raise _translate(exc) from None
        finally:
            await self.aclose()

    async def _pieces_until_deadline(self) -> AsyncGenerator[bytes, None]:
        """:meth:`iter_pieces` for a response with a deadline (aiohttp's read timer kept)."""
        readany = self._bounded(lambda _: self._response.content.readany())
        received = 0
        try:
            while piece := await readany(0):
                received += len(piece)
                if self._max_bytes is not None and received > self._max_bytes:
                    raise UpstreamTooLargeError("the file is larger than the allowed maximum")
                yield piece
        except (*_TRANSPORT_ERRORS, _PastDeadline) as exc:
            raise _translate(exc) from None
        finally:
            await self.aclose()

    def _bounded(self, read: Callable[[int], Awaitable[bytes]]
                 ) -> Callable[[int], Awaitable[bytes]]:
        """``read``, each call ending by the deadline (``_PastDeadline``), if there is one.

        One timer per read, not one around the body: a timeout must never be armed
        while the generator is suspended at a ``yield`` (it would cancel the caller).
        """
        deadline = self._deadline
        if deadline is None:
            return read

        async def bounded(size: int) -> bytes:
            try:
                async with asyncio.timeout_at(deadline):
                    return await read(size)
            except TimeoutError:
                if asyncio.get_running_loop().time() >= deadline:
                    raise _PastDeadline from None
                raise  # aiohttp's own read timeout

        return bounded

    async def read(self) -> bytes:
        """The whole body (subject to ``max_bytes``); only for small bodies."""
        return b"".join([chunk async for chunk in self.iter_bytes()])

    async def aclose(self) -> None:
        """Release the upstream connection (idempotent).

        A body read to its end returns the connection to the pool; otherwise the
        connection is aborted without reading (or TLS-closing) the rest.
        """
        if self._closed:
            return
        self._closed = True
        if self._budget is not None:
            self._budget.stream_ended()
        response = self._response
        connection = response.connection
        if response.content.is_eof():
            response.release()
            return
        transport = connection.transport if connection is not None else None
        if transport is not None:
            transport.abort()
        response.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class SafeFetcher:
    """Sends outbound file requests under a :class:`FetchPolicy` (see the module docstring).

    ``resolver`` maps a hostname to IP strings (default: :func:`system_resolver`);
    tests inject one to map fake names to local servers.
    """

    def __init__(
        self,
        client: PinnedAsyncClient,
        policy: FetchPolicy,
        resolver: Resolver | None = None,
    ) -> None:
        if not isinstance(client, PinnedAsyncClient):
            # A plain client would resolve names itself: the check would not bind the connect.
            raise TypeError("SafeFetcher needs a PinnedAsyncClient")
        self._client = client
        self._policy = policy
        self._resolver: Resolver = resolver or system_resolver

    @property
    def client(self) -> PinnedAsyncClient:
        """The pooled client this fetcher sends through."""
        return self._client

    @property
    def policy(self) -> FetchPolicy:
        return self._policy

    async def open(
        self,
        method: str,
        url: str | yarl.URL,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        max_bytes: int | None = None,
    ) -> UpstreamResponse:
        """Send one request (GET, HEAD or POST) and return the final answer, body unread.

        ``params`` are merged into the first URL only. Redirects are followed by hand:
        303 (and 301/302 after POST) become a GET without body; credential headers are
        dropped when the origin changes. The body cap is the smaller of ``max_bytes``
        and the policy's; a declared ``Content-Length`` above it is refused here, before
        any byte is read. With the policy's ``total_timeout``, the hops and every later
        read of the body end by one deadline (:class:`UpstreamTimeoutError`).
        Raises :class:`UnsafeUrlError`, :class:`UpstreamTimeoutError`,
        :class:`UpstreamUnavailableError` or :class:`UpstreamTooLargeError`.
        """
        method = method.upper()
        if method not in _METHODS:
            raise UnsafeUrlError("only GET, HEAD and POST file requests are allowed")
        if json is not None and content is not None:
            raise ValueError("pass json or content, not both")
        caps = [cap for cap in (max_bytes, self._policy.max_bytes) if cap is not None]
        cap = min(caps) if caps else None
        current = _parse_url(url)
        if params:
            current = with_params(current, params)
        hop_headers: CIMultiDict[str] = CIMultiDict(headers or {})
        for name in _DROPPED_HEADERS:
            hop_headers.popall(name, None)
        if "accept-encoding" not in hop_headers:
            # Relay files as stored: no decompression cost, Content-Length stays exact.
            hop_headers["Accept-Encoding"] = "identity"
        body = content
        if json is not None:
            # The bytes httpx sent for ``json=`` (compact, UTF-8), so origins see the same.
            body = jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
            hop_headers.setdefault("Content-Type", "application/json")

        total = self._policy.total_timeout
        if total is None:
            return await self._follow(method, current, hop_headers, body, cap, None)
        deadline = asyncio.get_running_loop().time() + total
        try:
            async with asyncio.timeout_at(deadline):
                return await self._follow(method, current, hop_headers, body, cap, deadline)
        except TimeoutError:
            raise _translate(_PastDeadline()) from None

    async def _follow(
        self, method: str, current: yarl.URL, hop_headers: CIMultiDict[str],
        body: bytes | None, cap: int | None, deadline: float | None,
    ) -> UpstreamResponse:
        """The hops of :meth:`open`: send, and follow redirects (each checked again)."""
        for hop in range(self._policy.max_redirects + 1):
            pin = await self._check(current)
            logger.debug("upstream %s request, hop %d, scheme %s", method, hop, current.scheme)
            response = await self._send(method, current, hop_headers, body, pin)
            status, location = response.status, response.headers.get("location")
            if status not in _REDIRECTS or location is None:
                upstream = UpstreamResponse(response, current, cap, self._policy.chunk_size,
                                             self._policy.read_timeout, self._client.read_budget,
                                             deadline)
                declared = _declared_length(response) if method != "HEAD" else None
                if cap is not None and declared is not None and declared > cap:
                    await upstream.aclose()
                    raise UpstreamTooLargeError("the file is larger than the allowed maximum")
                return upstream
            await UpstreamResponse(response, current, cap).aclose()
            try:
                target = _allowed(join_url(current, location))
            except InvalidUrl:
                raise UpstreamUnavailableError("the file's server sent a bad redirect") from None
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, body = "GET", None
                hop_headers.popall("content-type", None)
            if _origin(target) != _origin(current):
                for name in _CREDENTIAL_HEADERS:
                    hop_headers.popall(name, None)
            current = target
        logger.info("refused an outbound file request: more than %d redirects", hop)
        raise UnsafeUrlError(f"too many redirects (more than {self._policy.max_redirects})",
                             reason="too_many_redirects")

    async def read_limited(
        self,
        method: str,
        url: str | yarl.URL,
        *,
        limit: int,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
    ) -> bytes:
        """The body of a 2xx answer, at most ``limit`` bytes (and the policy's cap).

        A non-2xx answer raises :class:`UpstreamUnavailableError`; a longer body raises
        :class:`UpstreamTooLargeError`; otherwise as :meth:`open`.
        """
        response = await self.open(
            method, url, headers=headers, params=params, json=json, content=content, max_bytes=limit
        )
        async with response:
            if not 200 <= response.status_code < 300:
                raise UpstreamUnavailableError(
                    f"the file's server answered with status {response.status_code}"
                )
            return await response.read()

    async def _check(self, url: yarl.URL) -> ConnectionPin:
        """Resolve the URL's host once and return the addresses, all of them allowed."""
        host = url.raw_host or ""
        addresses = await self._addresses(host)
        allow_private = self._policy.allow_private_addresses
        for address in addresses:
            if not is_allowed(address, allow_private_addresses=allow_private):
                logger.info("refused an outbound file request: non-public address")
                raise UnsafeUrlError("the file's host resolves to a non-public address",
                                     reason="refused_address")
        port = url.port or DEFAULT_PORTS[url.scheme]
        return ConnectionPin(host, port, tuple(str(address) for address in addresses))

    async def _addresses(self, host: str) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass  # a name, not an IP literal
        try:
            async with asyncio.timeout(self._policy.connect_timeout):
                resolved = await self._resolver(host)
            addresses = [ipaddress.ip_address(item) for item in resolved]
        except (OSError, ValueError):  # gaierror, TimeoutError, a malformed answer
            addresses = []
        if not addresses:
            logger.info("refused an outbound file request: host did not resolve")
            raise UnsafeUrlError("the file's host could not be resolved",
                                 reason="unresolved_host")
        return addresses

    async def _send(
        self,
        method: str,
        url: yarl.URL,
        headers: CIMultiDict[str],
        body: bytes | None,
        pin: ConnectionPin,
    ) -> aiohttp.ClientResponse:
        try:
            with pinned(pin):
                return await self._client.session.request(
                    method,
                    url,  # already encoded (urls.parse_url): aiohttp sends it as is
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    timeout=self._policy.client_timeout(len(pin.addresses)),
                    # No Content-Type unless the caller or ``json`` set one, as httpx did.
                    skip_auto_headers=("Content-Type",),
                )
        except _TRANSPORT_ERRORS as exc:
            raise _translate(exc) from None
