"""Authenticate a signed request: signature (or AuthToken), then the nonce.

One code path for every signed endpoint. The signature is verified *before* the
nonce is consumed, so nobody can burn another address's nonces; the nonce is then
checked and advanced in one atomic store operation. With an AuthToken instead of a
signature the nonce is checked but not advanced: whoever holds a token must not be
able to lock its owner out of signed requests with a huge nonce.

The per-signer rate limit (``signer_limit``) runs once the signer is proven and before
the nonce is consumed: nobody can spend another address's budget by naming it, and a
refused request can be sent again unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tidegate.auth.nonces import check_nonce, consume_nonce, parse_nonce
from tidegate.auth.signatures import InvalidSignatureError, verify_signer
from tidegate.auth.tokens import AuthTokens, InvalidTokenError
from tidegate.errors import BadRequestError, ValidationError
from tidegate.stores.base import Store
from tidegate.types import checksum_address, is_address


class RequestAuthenticator:
    """Checks who signed a request and consumes its nonce."""

    def __init__(self, store: Store, tokens: AuthTokens,
                 signer_limit: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.tokens = tokens
        self.signer_limit = signer_limit
        """Called with the verified signer; raises to refuse (the rate limit's hook)."""

    async def authenticate(
        self,
        *,
        signer: str,
        message: str,
        nonce: str,
        signature: str | None,
        auth_token: str | None,
        allow_token: bool = True,
    ) -> str:
        """Return the checksummed signer after verifying ``message + nonce``.

        A non-empty ``signature`` takes precedence over ``auth_token`` (as in the
        reference); the token is only considered where ``allow_token``.
        """
        if not nonce.strip():
            raise ValidationError({"nonce": "The nonce field is required."})
        if not is_address(signer):
            raise BadRequestError("Invalid address.", code="invalid_address")
        address = checksum_address(signer)
        parse_nonce(nonce)  # reject a malformed nonce before any crypto work
        if signature:
            verify_signer(message + nonce, signature, address)
        elif auth_token and allow_token:
            holder = await self.tokens.verify(auth_token)
            if holder != address:
                raise InvalidTokenError("Token is invalid.")
            if self.signer_limit is not None:
                await self.signer_limit(address)
            await check_nonce(self.store, address, nonce)
            return address
        else:
            raise InvalidSignatureError("Missing signature or AuthToken.", code="missing_signature")
        if self.signer_limit is not None:
            await self.signer_limit(address)
        await consume_nonce(self.store, address, nonce)
        return address
