"""The rate limit at the door: route classes, the 429 answer, the per-signer hook.

:class:`RateGate` runs first in :class:`~tidegate.api.fastpath.TidegateApp`, before the
hot routes and the middleware stack, so every request (``/nonce`` included) meets it:
one dict lookup for the route's class, one for the client's key, the GCRA arithmetic.
A refused request is answered there: 429 ``{"error", "code": "rate_limited"}`` with
``Retry-After`` and the CORS headers of every other answer.

The per-signer limit cannot be decided at the door: who signed is only known once the
signature (or AuthToken) is verified. :meth:`RateGate.check_signer` is the hook
:class:`~tidegate.auth.request_auth.RequestAuthenticator` calls right after that and
before the nonce is consumed (a refused request can be sent again as it is). It takes
the route class the door saw, through a context variable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from time import time_ns as _time_ns
from typing import Any, Final

import orjson
from prometheus_client import Counter, Gauge
from starlette.types import Scope, Send

from tidegate.api.middleware import Metrics, log_access
from tidegate.api.routes import Endpoint
from tidegate.errors import RateLimitedError
from tidegate.ratelimit.buckets import UNKNOWN, Bucket, Limiter, now_us
from tidegate.ratelimit.clients import ClientKeys
from tidegate.settings import RateLimitSettings

# Endpoint name -> route class; every other endpoint is "read". None: never limited
# (a liveness probe answered 429 would get a healthy process restarted).
ROUTE_CLASSES: Final[dict[str, str | None]] = {
    "computeStatus": "status",
    "download": "signed",
    "decrypt": "signed",
    "computeStart": "signed",
    "computeStop": "signed",
    "computeDelete": "signed",
    "computeResult": "signed",
    "freeCompute": "signed",
    "computeStreamableLogs": "signed",
    "create_auth_token": "signed",
    "delete_auth_token": "signed",
    "generateAuthToken": "signed",
    "invalidateAuthToken": "signed",
    "fileinfo": "probe",
    "fileInfo": "probe",
    "directCommand": "probe",  # it reaches fileInfo's probes
    "initialize": "probe",
    "initializeCompute": "probe",
    "encrypt": "probe",
    "aquariusQuery": "probe",
    "aquariusValidate": "probe",
    "health": None,
    "ready": None,
    "metrics": None,
}
DEFAULT_CLASS: Final = "read"
UNMATCHED: Final = "unmatched"

_JSON: Final = (b"content-type", b"application/json")
_ALLOW_ORIGIN: Final = (b"access-control-allow-origin", b"*")
_VARY: Final = (b"vary", b"Origin")
_BODY: Final = orjson.dumps({"error": "Too many requests: retry later.", "code": "rate_limited"})

_signer_bucket: ContextVar[Bucket | None] = ContextVar("tidegate_signer_bucket", default=None)


@dataclass(frozen=True)
class RouteLimit:
    """What the door knows about a route: its class, buckets and metrics label."""

    name: str
    address: Bucket | None
    signer: Bucket | None
    label: str


def retry_after(wait_us: int) -> int:
    """``Retry-After`` in whole seconds (rounded up), at least 1."""
    return max(1, -(-wait_us // 1_000_000))


class _Stats:
    def __init__(self, metrics: Metrics, backend: str) -> None:
        self.limited = Counter(
            "tidegate_rate_limited_total", "Requests refused with 429 by the rate limit",
            ["route_class", "key"], registry=metrics.registry)
        self.errors = Counter(
            "tidegate_rate_limit_backend_errors_total",
            "Failed exchanges with the rate limit's shared state (limits then per worker)",
            ["backend"], registry=metrics.registry).labels(backend)
        self.up = Gauge(
            "tidegate_rate_limit_backend_up",
            "0 from a failed exchange with the rate limit's shared state until one succeeds",
            ["backend"], registry=metrics.registry).labels(backend)
        self.up.set(1)
        self._children: dict[tuple[str, str], Any] = {}

    def refused(self, route_class: str, kind: str) -> None:
        child = self._children.get((route_class, kind))
        if child is None:
            child = self._children[(route_class, kind)] = self.limited.labels(route_class, kind)
        child.inc()

    def synced(self, ok: bool) -> None:
        self.up.set(1 if ok else 0)
        if not ok:
            self.errors.inc()


class RateGate:
    """Per-address limits at the door and the per-signer hook, for one worker."""

    def __init__(self, settings: RateLimitSettings, endpoints: Iterable[Endpoint],
                 metrics: Metrics, *, root_path: str = "", access_log: bool = False,
                 backend_name: str = "local", clock: Callable[[], int] = now_us) -> None:
        self.limiter = Limiter(dict(settings.limits), sync_interval=settings.sync_interval,
                               clock=clock)
        self.clock = clock
        self.clients = ClientKeys(settings.trusted_proxies)
        self._trusted = bool(settings.trusted_proxies)
        self._peer_keys = self.clients.peer_keys
        self._wall = clock is now_us  # the clock of every decision is time.time_ns()
        self.metrics = metrics
        self.stats = _Stats(metrics, backend_name)
        self.access_log = access_log
        self._exact: dict[tuple[str, str], RouteLimit | None] = {}
        self._prefixes: list[tuple[str, str, RouteLimit | None]] = []
        self._fallback = self._limit(DEFAULT_CLASS, UNMATCHED)
        prefix = root_path.rstrip("/")
        for endpoint in endpoints:
            name = ROUTE_CLASSES.get(endpoint.name, DEFAULT_CLASS)
            limit = None if name is None else self._limit(name, endpoint.path)
            paths = {prefix + endpoint.path}
            if endpoint.path == "/":
                paths.add("/")  # GET / answers at the host root too
            for path in paths:
                if "{" in path:
                    self._prefixes.append((endpoint.method, path.partition("{")[0], limit))
                else:
                    self._exact[(endpoint.method, path)] = limit

    def _limit(self, name: str, label: str) -> RouteLimit:
        return RouteLimit(name, self.limiter.bucket(name, "address"),
                          self.limiter.bucket(name, "signer"), label)

    def route(self, method: str, path: str) -> RouteLimit | None:
        """The route's limits (None: not limited)."""
        try:
            return self._exact[(method, path)]
        except KeyError:
            pass
        for m, start, limit in self._prefixes:
            if m == method and path.startswith(start):
                return limit
        return self._fallback

    def check(self, scope: Scope) -> tuple[RouteLimit | None, int]:
        """(the route's limits, 0) when admitted, else the µs to wait, or
        :data:`UNKNOWN`: then :meth:`settle` decides (after fetching the client's key).

        Every request takes this path (``/nonce`` at tens of thousands a second): the
        common case is inlined, two dict lookups and the bucket's arithmetic.
        """
        try:
            limit = self._exact[(scope["method"], scope["path"])]
        except KeyError:
            limit = self.route(scope["method"], scope["path"])
        if limit is None:
            return None, 0
        bucket = limit.address
        if bucket is None:
            return limit, 0
        client = scope.get("client")
        key = self._peer_keys.get(client[0]) if client and not self._trusted else None
        if key is None:
            key = self.clients.key(client, scope["headers"])
        wait = bucket.take(key, _time_ns() // 1000 if self._wall else self.clock())
        if wait > 0:
            self.stats.refused(limit.name, "address")
        return limit, wait

    async def settle(self, scope: Scope, limit: RouteLimit) -> int:
        """:meth:`check` for a client this worker does not know yet."""
        bucket = limit.address
        if bucket is None:
            return 0
        key = self.clients.key(scope.get("client"), scope["headers"])
        await self.limiter.fetch(bucket, key)
        wait = bucket.take(key, self.clock())
        if wait > 0:
            self.stats.refused(limit.name, "address")
        return max(wait, 0)

    def set_clock(self, clock: Callable[[], int]) -> None:
        """Use ``clock`` (µs since the epoch) for every decision (tests)."""
        self.clock = self.limiter.clock = clock
        self._wall = clock is now_us

    @staticmethod
    def enter(limit: RouteLimit | None) -> None:
        """Remember the route for :meth:`check_signer` (the request's own context)."""
        _signer_bucket.set(limit.signer if limit is not None else None)

    async def refuse(self, scope: Scope, send: Send, limit: RouteLimit, wait: int) -> None:
        """Answer 429 at the door (metrics and access log as for any request)."""
        started = time.perf_counter()
        headers = [(b"content-length", str(len(_BODY)).encode()), _JSON,
                   (b"retry-after", str(retry_after(wait)).encode()), _ALLOW_ORIGIN]
        if any(name == b"origin" for name, _v in scope["headers"]):
            headers.append((b"access-control-expose-headers", b"Content-Disposition, Retry-After"))
        headers.append(_VARY)
        method = scope["method"]
        self.metrics.observe_start(method, limit.label, time.perf_counter() - started)
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": _BODY})
        self.metrics.count(method, limit.label, 429)
        if self.access_log:
            log_access(method, limit.label, 429, started)

    async def check_signer(self, signer: str) -> None:
        """Raise :class:`RateLimitedError` if ``signer`` (verified) is over its limit."""
        bucket = _signer_bucket.get()
        if bucket is None:
            return
        wait = bucket.take(signer, self.clock())
        if wait == UNKNOWN:
            await self.limiter.fetch(bucket, signer)
            wait = bucket.take(signer, self.clock())
        if wait > 0:
            self.stats.refused(bucket.name, "signer")
            raise RateLimitedError("Too many requests: retry later.",
                                   retry_after=retry_after(wait))
