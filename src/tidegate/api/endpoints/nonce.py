"""``GET /api/services/nonce`` — the last nonce used by an address (1 if none)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.params import Params, parse_params
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.auth.nonces import reported_nonce
from tidegate.errors import BadRequestError
from tidegate.types import checksum_address, is_address


class NonceParams(Params):
    userAddress: str


async def get_nonce(request: Request) -> Response:
    params = await parse_params(request, NonceParams)
    if not is_address(params.userAddress):
        raise BadRequestError("The userAddress is not an Ethereum address.",
                              code="invalid_address")
    stored = await services(request).store.get_nonce(checksum_address(params.userAddress))
    return JsonResponse({"nonce": reported_nonce(stored)})


ENDPOINTS = [
    Endpoint("nonce", "GET", "/api/services/nonce", get_nonce,
             "Last nonce used by an address (a JSON integer, 1 for a new address)",
             params=NonceParams),
]
