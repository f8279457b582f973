"""The route table: one list of endpoints feeds the router, ``GET /`` and OpenAPI.

Each endpoint names its request model and where its parameters come from; the route
parses the request into that model before the handler runs, so a handler only ever
sees valid, typed parameters, and OpenAPI describes the model that validated them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from tidegate.api.errors import error_response
from tidegate.api.params import NoParams, parse_model, read_json, read_params

Handler = Callable[[Request, Any], Awaitable[Response]]
"""``handler(request, params)``: ``params`` is an instance of the endpoint's model."""
Source = Literal["params", "json", "query", "path", "none"]


@dataclass(frozen=True)
class Variant:
    """A second request form on one method and path (the other protocol generation's),
    told apart by what the request carries: ``carries`` is that rule over the parsed
    parameters, ``rule`` the same rule as JSON Schema (OpenAPI: ``if rule then params
    else`` the endpoint's own model). Requests it matches are validated into ``params``
    and answered by ``handler``."""

    carries: Callable[[Mapping[str, Any]], bool]
    rule: dict[str, Any]
    params: type[pydantic.BaseModel]
    handler: Handler


@dataclass(frozen=True)
class Endpoint:
    """One HTTP endpoint.

    ``name`` is the key in the root document's ``serviceEndpoints`` (exactly the
    reference's names); endpoints with ``service=False`` (health, docs) are not
    listed there. ``params`` is the request model, read from ``source`` (see
    :mod:`tidegate.api.params`); ``free_body``: the handler reads the body as it is,
    bytes (encrypt) or free-form JSON (an Elasticsearch query, a DDO).
    ``fetches_files``: the handler may fetch a file from its origin, so it may answer
    502/504 (the origin failed); OpenAPI documents those statuses only where it is set.
    ``static``: the answer needs no dependency (no store, chain or metadata source), so
    it never answers 503; every other operation documents 503.
    ``body_schema``: the JSON Schema of a ``free_body="json"`` body, where the handler
    checks more than "an object" (default: any object); ``body_required``: whether the
    free body may be left out (an empty body then reads as ``{}``).
    """

    name: str
    method: str
    path: str
    handler: Handler
    summary: str
    params: type[pydantic.BaseModel] = NoParams
    source: Source = "params"
    free_body: Literal["bytes", "json"] | None = None
    service: bool = True
    responses: tuple[tuple[int, str], ...] = ()
    fetches_files: bool = False
    static: bool = False
    body_schema: dict[str, Any] | None = None
    body_required: bool = True
    variant: Variant | None = None

    async def parse(self, request: Request) -> pydantic.BaseModel:
        """The request's parameters, validated into :attr:`params` (the one parse)."""
        return (await self.dispatch(request))[1]

    async def dispatch(self, request: Request) -> tuple[Handler, pydantic.BaseModel]:
        """The handler for this request and its parameters, validated into its model
        (:attr:`variant`'s when the request carries what it names)."""
        if self.source == "params":
            data: dict[str, Any] = await read_params(request)
        elif self.source == "json":
            data = await read_json(request)
        elif self.source == "query":
            data = dict(request.query_params)
        elif self.source == "path":
            data = dict(request.path_params)
        else:
            data = {}
        if self.variant is not None and self.variant.carries(data):
            return self.variant.handler, parse_model(self.variant.params, data)
        return self.handler, parse_model(self.params, data)


def _guarded(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    route = f"{endpoint.method} {endpoint.path}"

    async def handle(request: Request) -> Response:
        try:
            handler, params = await endpoint.dispatch(request)
            return await handler(request, params)
        except Exception as exc:
            return error_response(exc, route)

    return handle


def starlette_routes(endpoints: list[Endpoint]) -> list[Route]:
    """Starlette routes for ``endpoints``: one Route per path, dispatching each method to
    its endpoint, so a 405 names every method of the path in ``Allow``.

    Literal paths come before templated ones (``/ddo/validate`` before ``/ddo/{did}``)
    and own their path for every method: a method the literal path lacks is a 405 of
    that path, not a match of the template.
    """
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    names: dict[str, str] = {}
    for e in endpoints:
        by_path.setdefault(e.path, {})[e.method] = _guarded(e)
        names.setdefault(e.path, e.name)
    ordered = sorted(by_path, key=lambda path: "{" in path)  # stable: table order kept
    return [(_TemplateRoute if "{" in path else _LiteralRoute)(
        path, _by_method(by_path[path]), methods=list(by_path[path]), name=names[path])
        for path in ordered]


class _TemplateRoute(Route):
    """A route whose path has parameters."""


class _LiteralRoute(Route):
    """A route whose path has no parameter: it owns its path for every method, so a method
    it lacks is its 405 (``GET /ddo/validate``), never another route's template match
    (``GET /ddo/{did}`` with did ``validate``)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        return (Match.FULL if match is Match.PARTIAL else match), child


def _by_method(handlers: dict[str, Callable[[Request], Awaitable[Response]]],
               ) -> Callable[[Request], Awaitable[Response]]:
    if len(handlers) == 1:
        return next(iter(handlers.values()))
    head = handlers.get("GET")

    async def dispatch(request: Request) -> Response:
        # The Route let only its methods through (HEAD with GET, as Starlette adds it).
        handler = handlers.get(request.method) or head
        assert handler is not None
        return await handler(request)

    return dispatch


def service_endpoints(endpoints: list[Endpoint]) -> dict[str, list[str]]:
    """The root document's ``serviceEndpoints``: name -> [METHOD, path]."""
    return {e.name: [e.method, e.path] for e in endpoints if e.service}
