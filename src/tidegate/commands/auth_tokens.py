"""Create and delete auth tokens (signed ``address + nonce``, no AuthToken allowed)."""

from __future__ import annotations

import time

from tidegate.auth.request_auth import RequestAuthenticator
from tidegate.auth.signatures import auth_token_message
from tidegate.auth.tokens import AuthTokens
from tidegate.errors import BadRequestError


def parse_expiration(raw: str) -> int:
    """A future UTC timestamp in whole seconds."""
    text = raw.strip()
    if not text.isdigit():
        raise BadRequestError("The expiration must be an integer timestamp.",
                              code="invalid_expiration")
    value = int(text)
    if value <= int(time.time()):
        raise BadRequestError("Invalid timestamp provided: expiration must be in the future.",
                              code="invalid_expiration")
    return value


async def create_auth_token(
    authenticator: RequestAuthenticator, tokens: AuthTokens, *, address: str, nonce: str,
    signature: str, expiration: str,
) -> str:
    """Issue a token for ``address`` after verifying its signed request."""
    expires = parse_expiration(expiration)
    signer = await authenticator.authenticate(
        signer=address, message=auth_token_message(address), nonce=nonce,
        signature=signature, auth_token=None, allow_token=False,
    )
    return await tokens.create(signer, expires)


async def delete_auth_token(
    authenticator: RequestAuthenticator, tokens: AuthTokens, *, address: str, nonce: str,
    signature: str, token: str,
) -> None:
    """Revoke ``token`` (which must belong to ``address``) after a signed request."""
    signer = await authenticator.authenticate(
        signer=address, message=auth_token_message(address), nonce=nonce,
        signature=signature, auth_token=None, allow_token=False,
    )
    await tokens.revoke(token, signer)
