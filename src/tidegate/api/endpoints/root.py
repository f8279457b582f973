"""``GET /`` — the provider's identity and service map (clients call it constantly)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tidegate import __version__
from tidegate.api.context import services
from tidegate.api.cors import allow_any_origin
from tidegate.api.params import NoParams
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint, service_endpoints
from tidegate.crypto.ecies import compressed_public_key_hex


def root_document(request: Request) -> dict[str, object]:
    """Build the root document from the route table and configured chains."""
    svc = services(request)
    addresses = {str(c.chain_id): c.provider_address for c in svc.chains.by_id.values()}
    document: dict[str, object] = {
        "software": "Tidegate",
        "version": __version__,
        "chainIds": svc.chains.ids,
        "providerAddresses": addresses,
        "serviceEndpoints": service_endpoints(request.app.state.endpoints),
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
    cached: bytes | None = getattr(request.app.state, "root_body", None)
    if cached is None:
        cached = bytes(JsonResponse(root_document(request)).body)
        request.app.state.root_body = cached
    return allow_any_origin(Response(cached, media_type="application/json"))


ENDPOINTS = [
    Endpoint("root", "GET", "/", get_root, "Provider identity, chains and service map",
             source="none", service=False),
]
