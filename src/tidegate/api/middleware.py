"""Pure ASGI middleware: Prometheus metrics and JSON access logs.

Pure ASGI (not BaseHTTPMiddleware) so streamed downloads pass through untouched.
The access log records method, route template, path, status, duration, bytes and the
request id (``X-Request-ID``, accepted or generated, returned): never the query string
(signatures, tokens) nor other headers.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidegate.logs import FIELDS_EXTRA

access_log = logging.getLogger("tidegate.access")


class Metrics:
    """The process's Prometheus collectors (own registry, so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tidegate_requests_total", "HTTP requests", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tidegate_request_duration_seconds", "Time to the response start",
            ["method", "route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.inbound_refused = Counter(
            "tidegate_inbound_refused_total",
            "Requests refused before they reached the app (timeouts, sizes, malformed)",
            ["code"], registry=self.registry,
        )
        # labels() hashes and locks on every call: keep the children it returns.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    def observe_start(self, method: str, route: str, seconds: float) -> None:
        """Record the time from request to response start."""
        timer = self._timers.get((method, route))
        if timer is None:
            timer = self._timers[(method, route)] = self.latency.labels(method, route)
        timer.observe(seconds)

    def count(self, method: str, route: str, status: int) -> None:
        """Count one finished request."""
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self._counters[(method, route, status)] = self.requests.labels(
                method, route, str(status))
        counter.inc()


_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
# Generated ids: a random per-process prefix and a counter. Unique across workers and
# restarts (the prefix), not secret (they are echoed), and no syscall per request.
_ID_PREFIX: Final = os.urandom(4).hex()
_id_counter = itertools.count(1)


def request_id(incoming: bytes | None) -> bytes:
    """The client's ``X-Request-ID`` when it is a plain token (≤ 64 characters), else a
    fresh one: it is echoed in the response and in the access log, so it must be safe."""
    if incoming is not None and _REQUEST_ID.fullmatch(incoming):
        return incoming
    return f"{_ID_PREFIX}{next(_id_counter):08x}".encode()


def log_access(method: str, route: str, status: int, started: float, *, path: str = "",
               sent: int = 0, rid: bytes = b"") -> None:
    """One access-log record with real fields: no query string, no headers but the id."""
    if access_log.isEnabledFor(logging.INFO):
        access_log.info("%s %s %d", method, route, status, extra={FIELDS_EXTRA: {
            "method": method,
            "route": route,
            "path": path or route,
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "bytes": sent,
            "request_id": rid.decode("ascii"),
        }})


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class ObservabilityMiddleware:
    """Count requests, time them to the first response byte, and write an access log."""

    def __init__(self, app: ASGIApp, metrics: Metrics, log_access: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.log_access = log_access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        sent = 0
        rid = request_id(next((v for k, v in scope["headers"] if k == b"x-request-id"), None))

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid)]
                self.metrics.observe_start(scope["method"], _route_label(scope),
                                           time.perf_counter() - start)
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_label(scope)
            self.metrics.count(scope["method"], route, status)
            if self.log_access:
                log_access(scope["method"], route, status, start, path=scope["path"],
                           sent=sent, rid=rid)
