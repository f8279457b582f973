"""The framework ceiling: "hello" apps under uvicorn with Tidegate's server settings.

``python -m bench.hello_app PORT WORKERS [raw|starlette]`` serves either a bare ASGI
app (the ceiling issue #7 compares against) or a one-route Starlette app without
middleware, exactly as ``tidegate serve`` runs uvicorn (uvloop, httptools, no access
log, keep-alive 30 s).
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = b'{"hello":"world"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Bare ASGI: no framework at all."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def _hello(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


starlette_app = Starlette(routes=[Route("/", _hello)])


if __name__ == "__main__":
    target = "bench.hello_app:starlette_app" if sys.argv[3:] == ["starlette"] else \
        "bench.hello_app:app"
    uvicorn.run(target, host="127.0.0.1", port=int(sys.argv[1]), workers=int(sys.argv[2]),
                loop="uvloop", http="httptools", access_log=False, log_config=None,
                log_level="warning", proxy_headers=False, timeout_keep_alive=30)
