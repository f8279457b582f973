"""The route table: one list of endpoints feeds the router, ``GET /`` and OpenAPI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import pydantic
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tidegate.api.errors import error_response

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    """One HTTP endpoint.

    ``name`` is the key in the root document's ``serviceEndpoints`` (exactly the
    reference's names); endpoints with ``service=False`` (health, docs) are not
    listed there. ``params`` documents the parameters in OpenAPI; ``body`` says
    whether they come as query-or-JSON (``params``), a JSON body or raw bytes.
    """

    name: str
    method: str
    path: str
    handler: Handler
    summary: str
    params: type[pydantic.BaseModel] | None = None
    body: Literal["params", "json", "raw", "none"] = "params"
    service: bool = True
    responses: tuple[tuple[int, str], ...] = ()


def _guarded(endpoint: Endpoint) -> Handler:
    route = f"{endpoint.method} {endpoint.path}"

    async def handle(request: Request) -> Response:
        try:
            return await endpoint.handler(request)
        except Exception as exc:
            return error_response(exc, route)

    return handle


def starlette_routes(endpoints: list[Endpoint]) -> list[Route]:
    """Starlette routes for ``endpoints`` (paths sharing a route get one Route each)."""
    return [
        Route(e.path, _guarded(e), methods=[e.method], name=e.name) for e in endpoints
    ]


def service_endpoints(endpoints: list[Endpoint]) -> dict[str, list[str]]:
    """The root document's ``serviceEndpoints``: name -> [METHOD, path]."""
    return {e.name: [e.method, e.path] for e in endpoints if e.service}
