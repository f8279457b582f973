"""Relay lab: how fast can one uvicorn worker relay a big file, per upstream client?

Not part of ``make bench``: evidence for the download-relay findings in bench/README.md.
``python -m bench.relay_lab ORIGIN_URL [FILE] [CONCURRENT]`` starts one uvicorn worker (uvloop,
httptools, as ``tidegate serve``) whose routes each stream ORIGIN_URL/FILE through a
different upstream client, then downloads each with curl and prints MB/s beside the
direct download and the worker's peak RSS growth (with CONCURRENT > 1: that many
downloads at once per route, aggregate MB/s):

* ``/httpx``    httpx ``aiter_bytes()`` (what Tidegate's SafeFetcher does today);
* ``/aiohttp``  aiohttp ``content.iter_chunked(1 MiB)``;
* ``/streams``  plain asyncio streams: one HTTP/1.1 request, ``read(1 MiB)`` to the end.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx

CHUNK = int(os.environ.get("RELAY_LAB_CHUNK", 1024 * 1024))


def make_app(upstream: str) -> Any:
    state: dict[str, Any] = {}

    async def start(send: Any, length: str | None) -> None:
        headers = [(b"content-type", b"application/octet-stream")]
        if length:
            headers.append((b"content-length", length.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})

    async def via_httpx(send: Any) -> None:
        async with state["httpx"].stream("GET", upstream) as response:
            await start(send, response.headers.get("content-length"))
            async for chunk in response.aiter_bytes():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def via_aiohttp(send: Any) -> None:
        async with state["aiohttp"].get(upstream) as response:
            await start(send, response.headers.get("content-length"))
            async for chunk in response.content.iter_chunked(CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def via_streams(send: Any) -> None:
        parts = urlsplit(upstream)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80,
                                                       limit=4 * CHUNK)
        writer.write(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                     "Accept-Encoding: identity\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await start(send, str(length))
        remaining = length
        while remaining:
            chunk = await reader.read(min(CHUNK, remaining))
            if not chunk:
                raise ConnectionError("upstream closed early")
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        writer.close()

    routes = {"/httpx": via_httpx, "/aiohttp": via_aiohttp, "/streams": via_streams}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            state["httpx"] = httpx.AsyncClient(timeout=30)
            state["aiohttp"] = aiohttp.ClientSession()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await state["httpx"].aclose()
            await state["aiohttp"].close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await routes[scope["path"]](send)

    return app


def serve(upstream: str, port: int) -> None:
    import uvicorn

    uvicorn.run(make_app(upstream), host="127.0.0.1", port=port, loop="uvloop",
                http="httptools", access_log=False, log_level="warning")


def main() -> None:
    from bench.loads import curl_get, curl_many
    from bench.procs import Proc, free_port, peak_rss_mib, rss_mib, wait_http

    origin = sys.argv[1].rstrip("/")
    name = sys.argv[2] if len(sys.argv) > 2 else "big1g.bin"
    concurrent = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    size = int(httpx.head(f"{origin}/{name}").headers["content-length"])

    def measure(url: str) -> float:
        if concurrent == 1:
            return max(curl_get(url).mb_per_s for _ in range(2))
        result = curl_many([url] * concurrent, size, timeout=300)
        if result.failed:
            print(f"  {result.failed} of {concurrent} failed: {result.statuses}")
        return result.mb_per_s

    direct = measure(f"{origin}/{name}")
    print(f"{concurrent} x {name}: direct from origin {direct:8,.0f} MB/s")
    for route in ("httpx", "aiohttp", "streams"):
        port = free_port()  # a fresh worker per client: RSS growth is not shared
        proc = Proc("relay-lab", [sys.executable, "-c",
                                  "from bench.relay_lab import serve; "
                                  f"serve({origin + '/' + name!r}, {port})"],
                    cwd=Path(__file__).resolve().parent.parent)
        try:
            wait_http(f"http://127.0.0.1:{port}/streams", proc, timeout=30)
            time.sleep(0.3)
            base = rss_mib([proc.pid])[0]
            speed = measure(f"http://127.0.0.1:{port}/{route}")
            growth = peak_rss_mib([proc.pid])[0] - base
        finally:
            proc.stop()
        print(f"relay via {route:<10} {speed:8,.0f} MB/s  ({speed / direct:.0%} of direct, "
              f"peak RSS +{growth:.0f} MiB over {base:.0f})")


if __name__ == "__main__":
    main()
