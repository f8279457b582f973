"""CORS: any origin may call Tidegate (dApps in browsers do), in one place.

:func:`cors_middleware` answers preflights and adds the headers to cross-origin
requests; responses built outside it (errors, ``GET /``, the fast path) add
:data:`ALLOW_ORIGIN` themselves, as the reference does on every answer.
"""

from __future__ import annotations

from typing import Final

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

ALLOW_ORIGIN: Final = ("Access-Control-Allow-Origin", "*")
EXPOSE_HEADERS: Final = ("Access-Control-Expose-Headers", "Content-Disposition, Retry-After")
"""Browsers may read the download's file name and a 429's ``Retry-After``."""
VARY: Final = ("Vary", "Origin")


def cors_middleware() -> Middleware:
    """The app's CORS middleware: any origin, method and header; file names exposed."""
    return Middleware(CORSMiddleware, allow_origins=[ALLOW_ORIGIN[1]], allow_methods=["*"],
                      allow_headers=["*"],
                      expose_headers=[h.strip() for h in EXPOSE_HEADERS[1].split(",")])


def allow_any_origin(response: Response) -> Response:
    """``response`` with ``Access-Control-Allow-Origin: *`` (whatever the request)."""
    response.headers[ALLOW_ORIGIN[0]] = ALLOW_ORIGIN[1]
    return response


def raw_header(header: tuple[str, str]) -> tuple[bytes, bytes]:
    """An ASGI header (lower-case name) for code that answers below Starlette."""
    return header[0].lower().encode("latin-1"), header[1].encode("latin-1")
