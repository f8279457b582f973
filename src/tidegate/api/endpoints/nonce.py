"""``GET /api/services/nonce`` — the last nonce used by an address (1 if none)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.params import Params
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.auth.nonces import reported_nonce
from tidegate.types import ChecksumAddress


class NonceParams(Params):
    userAddress: ChecksumAddress


def nonce_answer(stored: str | None) -> dict[str, int]:
    """The answer for an address whose stored nonce is ``stored`` (``store.get_nonce``):
    ``{"nonce": N}``, N a JSON integer.

    The one rendering of the nonce, for this route and its fast path (which calls it
    without a coroutine in between: it is the hottest route).
    """
    return {"nonce": reported_nonce(stored)}


async def get_nonce(request: Request, p: NonceParams) -> Response:
    return JsonResponse(nonce_answer(await services(request).store.get_nonce(p.userAddress)))


ENDPOINTS = [
    Endpoint("nonce", "GET", "/api/services/nonce", get_nonce,
             "Last nonce used by an address (a JSON integer, 1 for a new address)",
             params=NonceParams),
]
