"""``GET createAuthToken`` and ``DELETE deleteAuthToken`` (signed ``address + nonce``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.params import Params
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.auth.request_auth import SignedRequest
from tidegate.auth.signatures import auth_token_message
from tidegate.commands.auth_tokens import (
    CreateAuthToken,
    DeleteAuthToken,
    create_auth_token,
    delete_auth_token,
)
from tidegate.types import AddressText, Expiration, Nonce


class SignedByAddress(Params):
    address: AddressText
    nonce: Nonce
    signature: str

    def proof(self) -> SignedRequest:
        return SignedRequest(signer=self.address, message=auth_token_message(self.address),
                             nonce=self.nonce, signature=self.signature, allow_token=False)


class CreateTokenParams(SignedByAddress):
    expiration: Expiration


class DeleteTokenParams(SignedByAddress):
    token: str


async def get_create_auth_token(request: Request, p: CreateTokenParams) -> Response:
    svc = services(request)
    token = await create_auth_token(CreateAuthToken(p.proof(), p.expiration),
                                    svc.authenticator, svc.tokens)
    return JsonResponse({"token": token})


async def delete_delete_auth_token(request: Request, p: DeleteTokenParams) -> Response:
    svc = services(request)
    await delete_auth_token(DeleteAuthToken(p.proof(), p.token), svc.authenticator, svc.tokens)
    return JsonResponse({"success": "Token has been deactivated."})


ENDPOINTS = [
    Endpoint("create_auth_token", "GET", "/api/services/createAuthToken",
             get_create_auth_token, "Issue an auth token (signed address + nonce)",
             params=CreateTokenParams),
    Endpoint("delete_auth_token", "DELETE", "/api/services/deleteAuthToken",
             delete_delete_auth_token, "Revoke an auth token (signed address + nonce)",
             params=DeleteTokenParams),
]
