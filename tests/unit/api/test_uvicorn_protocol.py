"""Canaries for the uvicorn internals ``tidegate serve``'s protocol relies on
(api/uvicorn_protocol.py), and its behaviour in process.

A failure after a uvicorn or httptools upgrade names what changed: the guard must be
re-done for the new version before the upgrade can land.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httptools
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http import httptools_impl

from tidegate.api.uvicorn_protocol import (
    HTTP_PROTOCOL,
    GuardedHttpToolsProtocol,
    InboundLimits,
    limits_of,
)

VERSION = f"uvicorn {uvicorn.__version__}, httptools {httptools.__version__}"
PROTOCOL = HTTP_PROTOCOL


def test_the_parser_callbacks_and_hooks_exist() -> None:
    base = httptools_impl.HttpToolsProtocol
    for name in ("on_message_begin", "on_headers_complete",
                 "on_message_complete", "data_received", "connection_made",
                 "connection_lost", "_unset_keepalive_if_required", "_should_upgrade",
                 "handle_websocket_upgrade", "_unsupported_upgrade_warning"):
        assert callable(getattr(base, name, None)), f"{VERSION}: HttpToolsProtocol.{name} gone"
    signature = inspect.signature(base.__init__)
    assert list(signature.parameters)[1:4] == ["config", "server_state", "app_state"], VERSION
    cycle = inspect.signature(httptools_impl.RequestResponseCycle.__init__)
    assert {"scope", "message_event"} <= set(cycle.parameters), VERSION
    source = inspect.getsource(base)
    # What the guard reads: the URL and headers uvicorn collects, the cycle it makes
    # once the headers are complete (with this request's scope).
    for needle in ("self.url += url", "self.headers.append((name, value))",
                   "self.cycle = RequestResponseCycle(", "scope=self.scope,",
                   "self.cycle.disconnected = True"):
        assert needle in source, f"{VERSION}: HttpToolsProtocol no longer does {needle!r}"
    assert issubclass(httptools.HttpParserCallbackError, httptools.HttpParserError), VERSION


def test_an_import_string_selects_the_protocol() -> None:
    config = uvicorn.Config(_App(), http=PROTOCOL)
    config.load()
    assert config.http_protocol_class is GuardedHttpToolsProtocol, VERSION
    assert limits_of(config.loaded_app) is _App.inbound_limits


class _App:
    """A tiny ASGI app that reads the whole body, then answers 200."""

    inbound_limits = InboundLimits(header_timeout=0.5, body_timeout=0.5, slow_after=0.2,
                                   slow_per_client=2, max_header_bytes=2048,
                                   max_url_bytes=512)

    def __init__(self) -> None:
        self.disconnects = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnects += 1
                return
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


@asynccontextmanager
async def _serving(app: _App) -> AsyncIterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=PROTOCOL,
                                           log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def _exchange(port: int, data: bytes, *, pause: float = 0) -> tuple[int, Any, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = asyncio.get_running_loop().time()
    writer.write(data)
    if pause:
        await asyncio.sleep(pause)
    answer = await reader.read()
    writer.close()
    elapsed = asyncio.get_running_loop().time() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head else 0
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = body
    return status, decoded, elapsed


async def test_guard_in_process() -> None:
    app = _App()
    async with _serving(app) as port:
        status, body, _ = await _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (status, body) == (200, b"ok")
        status, body, elapsed = await _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert (status, body["code"]) == (408, "request_timeout") and elapsed < 1.5
        status, body, elapsed = await _exchange(
            port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert (status, body["code"]) == (408, "request_timeout") and elapsed < 1.5
        assert app.disconnects == 1  # the app saw the timed-out body as a disconnect
        status, body, _ = await _exchange(port, b"NOT HTTP\r\n\r\n")
        assert (status, body) == (400, {"error": "Invalid HTTP request received.",
                                        "code": "bad_request"})
        status, body, _ = await _exchange(port, b"GET /" + b"a" * 600 + b" HTTP/1.1\r\n\r\n")
        assert (status, body["code"]) == (414, "uri_too_long")
        status, body, _ = await _exchange(
            port, b"GET / HTTP/1.1\r\nX: " + b"a" * 3000 + b"\r\n\r\n")
        assert (status, body["code"]) == (431, "headers_too_large")
