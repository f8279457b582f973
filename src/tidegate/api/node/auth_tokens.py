"""``POST /api/services/auth/token`` and ``/auth/token/invalidate`` (Ocean Node's tokens).

JSON bodies as ocean.js sends them: ``{address, signature, nonce}`` (+ ``validUntil`` in
milliseconds, ``chainId``) signed ``address + nonce + "createAuthToken"``; invalidate
``{address, signature, token, nonce}``. ocean.js 8.6.2 signs invalidate as
``address + nonce`` (no command): both forms are accepted (Ocean Node accepts anything
there: it tests its check's result object for truth). Answers ``{"token": …}`` and
``{"success": true}``; the tokens are the classic ones (same secret, store, revocation).
"""

from __future__ import annotations

import pydantic
from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.node.credentials import CREATE_AUTH_TOKEN, INVALIDATE_AUTH_TOKEN, node_proof
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
from tidegate.types import AddressText, Nonce, TimestampMillis


class CreateTokenParams(Params):
    address: AddressText
    signature: str
    nonce: Nonce
    validUntil: TimestampMillis | None = pydantic.Field(
        None, description="End of validity in milliseconds (default: one day).")
    chainId: str | None = pydantic.Field(None, description="Accepted and ignored.")


class InvalidateTokenParams(Params):
    address: AddressText
    signature: str
    nonce: Nonce
    token: str
    chainId: str | None = pydantic.Field(None, description="Accepted and ignored.")


async def post_token(request: Request, p: CreateTokenParams) -> Response:
    svc = services(request)
    expires = None if p.validUntil is None else -(-p.validUntil // 1000)
    token = await create_auth_token(
        CreateAuthToken(node_proof(p.address, p.nonce, p.signature, CREATE_AUTH_TOKEN,
                                   allow_token=False), expires),
        svc.authenticator, svc.tokens)
    return JsonResponse({"token": token})


async def post_invalidate(request: Request, p: InvalidateTokenParams) -> Response:
    svc = services(request)
    proof = SignedRequest(signer=p.address, message=auth_token_message(p.address),
                          nonce=p.nonce, signature=p.signature, allow_token=False,
                          command=INVALIDATE_AUTH_TOKEN)
    await delete_auth_token(DeleteAuthToken(proof, p.token), svc.authenticator, svc.tokens)
    return JsonResponse({"success": True})


ENDPOINTS = [
    Endpoint("generateAuthToken", "POST", "/api/services/auth/token", post_token,
             "Issue an auth token (signed address + nonce + 'createAuthToken')",
             params=CreateTokenParams, source="json"),
    Endpoint("invalidateAuthToken", "POST", "/api/services/auth/token/invalidate",
             post_invalidate,
             "Revoke an auth token (signed address + nonce [+ 'invalidateAuthToken'])",
             params=InvalidateTokenParams, source="json"),
]
