"""The two hottest read-only routes, answered before the Starlette stack.

Clients ask for ``GET /`` and ``GET /api/services/nonce`` before nearly every signed
request (ocean.js fetches the nonce each time). For these the full stack (Starlette's
error middleware, metrics, CORS, router, parameter model, handler guard) costs several
times the work itself. :class:`HotRoutes` answers only the plain, well-formed case, with
the same body, headers, metrics and access log as the full route; anything else (a bad
or missing address, extra or percent-encoded parameters, other methods, a store error,
a request before start-up finished) goes to the full app, so every error answer is
still defined in one place. The API tests run against both paths.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Final

import orjson
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from tidegate.api.cors import ALLOW_ORIGIN, EXPOSE_HEADERS, VARY, raw_header
from tidegate.api.endpoints.nonce import nonce_answer
from tidegate.api.middleware import Metrics, log_access, request_id
from tidegate.types import checksum_address, is_address

if TYPE_CHECKING:
    from tidegate.api.ratelimit import RateGate
    from tidegate.api.uvicorn_protocol import InboundLimits

__all__ = ["HotRoutes", "TidegateApp"]

NONCE_PATH: Final = "/api/services/nonce"
_NONCE_QUERY: Final = re.compile(rb"userAddress=(0x[0-9a-fA-F]{40})")
_JSON: Final = (b"content-type", b"application/json")
# What CORSMiddleware (allow_origins=["*"]) adds: Vary always, the rest on cross-origin.
_ALLOW_ORIGIN: Final = raw_header(ALLOW_ORIGIN)
_EXPOSE: Final = raw_header(EXPOSE_HEADERS)
_VARY: Final = raw_header(VARY)


def _inspect_headers(scope: Scope) -> tuple[bool, bool, bool, bytes | None]:
    """(has a body, has an Origin header, has an Authorization header, the
    X-Request-ID given): one pass over the headers."""
    body = origin = authorization = False
    rid = None
    for name, value in scope["headers"]:
        if name == b"origin":
            origin = True
        elif (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
            body = True
        elif name == b"x-request-id":
            rid = value
        elif name == b"authorization":
            authorization = True
    return body, origin, authorization, rid


class HotRoutes:
    """Answers ``GET /`` (once the full route has rendered it) and ``GET .../nonce``.

    ``state`` is the app's state: ``services`` and ``root_body`` appear there after
    start-up and after the first full ``GET /``.
    """

    def __init__(self, state: State, metrics: Metrics, *, root_path: str,
                 access_log: bool) -> None:
        self._state = state
        self._metrics = metrics
        self._nonce_path = root_path.rstrip("/") + NONCE_PATH
        self._access_log = access_log

    async def answer(self, scope: Scope, send: Send) -> bool:
        """Send the response and return True, or return False to let the full app answer."""
        path = scope["path"]
        if scope["method"] != "GET" or (path != "/" and path != self._nonce_path):
            return False  # every other request: two comparisons, nothing more
        has_body, has_origin, has_authorization, given_id = _inspect_headers(scope)
        if has_body:  # parameters may come as JSON: the full route merges them
            return False
        started = time.perf_counter()
        body: bytes | None
        if path == "/":
            # Ocean Node's clients (an Authorization header) have their own document.
            body = getattr(self._state, "root_body_node" if has_authorization else "root_body",
                           None)
            route = "/"
        else:
            body, route = await self._nonce_body(scope["query_string"]), NONCE_PATH
        if body is None:
            return False
        headers = [_JSON, (b"content-length", str(len(body)).encode())]
        if route == "/" or has_origin:  # GET / always allows any origin
            headers.append(_ALLOW_ORIGIN)
        if has_origin:
            headers.append(_EXPOSE)
        headers.append(_VARY)
        rid = request_id(given_id)
        headers.append((b"x-request-id", rid))
        self._metrics.observe_start("GET", route, time.perf_counter() - started)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self._metrics.count("GET", route, 200)
        if self._access_log:
            log_access("GET", route, 200, started, path=path, sent=len(body), rid=rid)
        return True

    async def _nonce_body(self, query: bytes) -> bytes | None:
        match = _NONCE_QUERY.fullmatch(query)
        services = getattr(self._state, "services", None)
        if match is None or services is None:
            return None
        text = match.group(1).decode("ascii")
        if not is_address(text):
            return None
        try:
            answer = nonce_answer(await services.store.get_nonce(checksum_address(text)))
        except Exception:  # the full route answers (and logs) the store error
            return None
        return orjson.dumps(answer)


class TidegateApp(Starlette):
    """Starlette, with the rate limit's door and :class:`HotRoutes` in front of its
    middleware stack."""

    hot_routes: HotRoutes | None = None
    rate_gate: RateGate | None = None
    inbound_limits: InboundLimits | None = None
    """Read by ``tidegate serve``'s HTTP protocol (:mod:`tidegate.api.uvicorn_protocol`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            gate = self.rate_gate
            if gate is None:
                limit = None
            else:
                limit, wait = gate.check(scope)
                if wait and limit is not None:
                    if wait < 0:  # a client this worker does not know yet
                        wait = await gate.settle(scope, limit)
                    if wait:
                        await gate.refuse(scope, send, limit, wait)
                        return
            hot = self.hot_routes
            if hot is not None and await hot.answer(scope, send):
                return
            if gate is not None:
                gate.enter(limit)  # for the per-signer limit, once the signer is known
        await super().__call__(scope, receive, send)
