"""``GET /api/services/nonce`` — the last nonce used by an address (1 if none)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.params import Params
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.auth.nonces import current_nonce
from tidegate.stores.base import Store
from tidegate.types import ChecksumAddress


class NonceParams(Params):
    userAddress: ChecksumAddress


async def nonce_answer(store: Store, address: str) -> dict[str, int]:
    """The answer for the checksummed ``address``: ``{"nonce": N}``, N a JSON integer.

    The one rendering of the nonce, for this route and its fast path.
    """
    return {"nonce": await current_nonce(store, address)}


async def get_nonce(request: Request, p: NonceParams) -> Response:
    return JsonResponse(await nonce_answer(services(request).store, p.userAddress))


ENDPOINTS = [
    Endpoint("nonce", "GET", "/api/services/nonce", get_nonce,
             "Last nonce used by an address (a JSON integer, 1 for a new address)",
             params=NonceParams),
]
