"""Create and delete auth tokens (signed ``address + nonce``; a token cannot stand in)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from tidegate.auth.request_auth import RequestAuthenticator, SignedRequest
from tidegate.auth.tokens import AuthTokens


@dataclass(frozen=True)
class CreateAuthToken:
    """Issue a token for the signer of ``proof``, valid until ``expires`` (UNIX seconds)."""

    proof: SignedRequest
    expires: int


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
    return await tokens.create(signer, cmd.expires)


async def delete_auth_token(cmd: DeleteAuthToken, authenticator: RequestAuthenticator,
                            tokens: AuthTokens) -> None:
    """Revoke the token after verifying the signed request."""
    signer = await authenticator.authenticate(_signature_only(cmd.proof))
    await tokens.revoke(cmd.token, signer)
