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
    """Build the root document from the route table and configured chains.

    The classic keys (``software``, ``version``, ``chainIds``, ``providerAddresses``,
    ``serviceEndpoints``) come first and are what they always were. Ocean Node's clients
    also read ``providerAddress`` (ocean.js >= 6 ``isValidProvider``, either key) and
    ``nodePublicKey`` (ocean.js 8 encrypts compute output settings and docker-registry
    credentials to it): both are given only when one provider key serves every chain,
    since either names a single key.
    """
    svc = services(request)
    chains = list(svc.chains.by_id.values())
    addresses = {str(c.chain_id): c.provider_address for c in chains}
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
        # Ocean Node sends its key's bytes (a JSON object of numbers); ocean.js 6 reads
        # only hex text, 8.x either: hex text serves every version.
        document["nodePublicKey"] = compressed_public_key_hex(chains[0].provider_key)
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
