"""``GET /`` — the provider's identity and service map (clients call it constantly).

Two generations read it. ocean.js 8 (Ocean Node's protocol) always sends an
``Authorization`` header here (``getEndpoints`` sets it, the text ``undefined`` when it
has no token); classic clients (ocean.py, ocean.js <= 3.4) never do. That header is
the one request difference before ``computeEnvironments``, whose requests are
byte-identical in both: Ocean Node's clients get the same document with that
service's path carrying ``?protocol=node`` (the C2D v2 shape), everyone else the
classic path (docs/ocean-node.md).
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from tidegate import __version__
from tidegate.api.context import services
from tidegate.api.cors import allow_any_origin
from tidegate.api.params import NoParams
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint, service_endpoints
from tidegate.crypto.ecies import compressed_public_key_hex

#: What Ocean Node's clients' ``computeEnvironments`` path carries (tells the shape).
NODE_ENVIRONMENTS_QUERY: Final = "?protocol=node"


def node_client(request: Request) -> bool:
    """The request comes from an Ocean Node protocol client (it carries Authorization)."""
    return "authorization" in request.headers


def root_document(request: Request, *, node: bool = False) -> dict[str, object]:
    """Build the root document from the route table and configured chains (``node``:
    for Ocean Node's clients, see the module docstring)."""
    svc = services(request)
    endpoints = service_endpoints(request.app.state.endpoints)
    if node and "computeEnvironments" in endpoints:
        method, path = endpoints["computeEnvironments"]
        endpoints["computeEnvironments"] = [method, path + NODE_ENVIRONMENTS_QUERY]
    addresses = {str(c.chain_id): c.provider_address for c in svc.chains.by_id.values()}
    document: dict[str, object] = {
        "software": "Tidegate",
        "version": __version__,
        "chainIds": svc.chains.ids,
        "providerAddresses": addresses,
        "serviceEndpoints": endpoints,
    }
    # ocean.py prefers the legacy single `providerAddress` whatever the chain: give it
    # only when it is right for every chain (one key everywhere).
    distinct = set(addresses.values())
    if len(distinct) == 1:
        document["providerAddress"] = distinct.pop()
        # Ocean Node's single node key, which ocean.js 8 ECIES-encrypts compute output
        # settings and registry credentials to. Ocean Node sends its bytes as a JSON
        # object of numbers; ocean.js 6 reads only hex text, 8.x either: hex serves all.
        key = next(iter(svc.chains.by_id.values())).provider_key
        document["nodePublicKey"] = compressed_public_key_hex(key)
    return document


async def get_root(request: Request, _: NoParams) -> Response:
    # The document only changes with configuration: render it once per process.
    node = node_client(request)
    attribute = "root_body_node" if node else "root_body"
    cached: bytes | None = getattr(request.app.state, attribute, None)
    if cached is None:
        cached = bytes(JsonResponse(root_document(request, node=node)).body)
        setattr(request.app.state, attribute, cached)
    return allow_any_origin(Response(cached, media_type="application/json"))


ENDPOINTS = [
    Endpoint("root", "GET", "/", get_root, "Provider identity, chains and service map",
             source="none", service=False),
]
