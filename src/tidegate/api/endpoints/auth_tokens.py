"""``GET createAuthToken`` and ``DELETE deleteAuthToken``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.params import Params, parse_params
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.commands.auth_tokens import create_auth_token, delete_auth_token


class CreateTokenParams(Params):
    address: str
    nonce: str
    signature: str
    expiration: str


class DeleteTokenParams(Params):
    address: str
    nonce: str
    signature: str
    token: str


async def get_create_auth_token(request: Request) -> Response:
    p = await parse_params(request, CreateTokenParams)
    svc = services(request)
    token = await create_auth_token(
        svc.authenticator, svc.tokens, address=p.address, nonce=p.nonce,
        signature=p.signature, expiration=p.expiration,
    )
    return JsonResponse({"token": token})


async def delete_delete_auth_token(request: Request) -> Response:
    p = await parse_params(request, DeleteTokenParams)
    svc = services(request)
    await delete_auth_token(
        svc.authenticator, svc.tokens, address=p.address, nonce=p.nonce,
        signature=p.signature, token=p.token,
    )
    return JsonResponse({"success": "Token has been deactivated."})


ENDPOINTS = [
    Endpoint("create_auth_token", "GET", "/api/services/createAuthToken",
             get_create_auth_token, "Issue an auth token (signed address + nonce)",
             params=CreateTokenParams),
    Endpoint("delete_auth_token", "DELETE", "/api/services/deleteAuthToken",
             delete_delete_auth_token, "Revoke an auth token (signed address + nonce)",
             params=DeleteTokenParams),
]
