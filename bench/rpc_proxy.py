"""A counting JSON-RPC proxy: forwards every POST to the chain, counts methods.

``python -m bench.rpc_proxy UPSTREAM PORT``. ``GET /_counts`` answers
``{"requests": n, "methods": {name: n}}`` (an HTTP request carrying a batch counts
once in ``requests`` and once per call in ``methods``); ``POST /_reset`` zeroes them.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from aiohttp import ClientSession, TCPConnector, web


def main(upstream: str, port: int) -> None:
    counts: Counter[str] = Counter()
    state = {"requests": 0}

    async def on_startup(app: web.Application) -> None:
        app["session"] = ClientSession(connector=TCPConnector(limit=64))

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        state["requests"] += 1
        try:
            payload = json.loads(body)
            calls = payload if isinstance(payload, list) else [payload]
            counts.update(str(call.get("method")) for call in calls)
        except ValueError:
            counts["<invalid>"] += 1
        async with request.app["session"].post(
                upstream, data=body, headers={"Content-Type": "application/json"}) as answer:
            data = await answer.read()
            return web.Response(body=data, status=answer.status,
                                content_type="application/json")

    async def get_counts(request: web.Request) -> web.Response:
        return web.json_response({"requests": state["requests"], "methods": dict(counts)})

    async def reset(request: web.Request) -> web.Response:
        counts.clear()
        state["requests"] = 0
        return web.json_response({})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/_counts", get_counts)
    app.router.add_post("/_reset", reset)
    app.router.add_post("/", forward)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
