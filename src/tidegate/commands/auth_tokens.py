"""Create and delete auth tokens (signed ``address + nonce``; a token cannot stand in)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Final

from tidegate.auth.request_auth import RequestAuthenticator, SignedRequest
from tidegate.auth.tokens import AuthTokens

DEFAULT_TOKEN_LIFETIME: Final = 24 * 3600
"""Seconds a token lives when the request names no end (Ocean Node's clients send
none, and Ocean Node's tokens then never expire; Tidegate's always do)."""


@dataclass(frozen=True)
class CreateAuthToken:
    """Issue a token for the signer of ``proof``, valid until ``expires`` (UNIX seconds;
    None: :data:`DEFAULT_TOKEN_LIFETIME` from now)."""

    proof: SignedRequest
    expires: int | None


@dataclass(frozen=True)
class DeleteAuthToken:
    """Revoke ``token``, which must belong to the signer of ``proof``."""

    proof: SignedRequest
    token: str


def _signature_only(proof: SignedRequest) -> SignedRequest:
    # A token must not mint or revoke tokens: only a fresh signature counts.
    return replace(proof, allow_token=False)


async def create_auth_token(cmd: CreateAuthToken, authenticator: RequestAuthenticator,
                            tokens: AuthTokens) -> str:
    """The new token, after verifying the signed request."""
    signer = await authenticator.authenticate(_signature_only(cmd.proof))
    expires = cmd.expires if cmd.expires is not None else int(time.time()) + DEFAULT_TOKEN_LIFETIME
    return await tokens.create(signer, expires)


async def delete_auth_token(cmd: DeleteAuthToken, authenticator: RequestAuthenticator,
                            tokens: AuthTokens) -> None:
    """Revoke the token after verifying the signed request."""
    signer = await authenticator.authenticate(_signature_only(cmd.proof))
    await tokens.revoke(cmd.token, signer)
