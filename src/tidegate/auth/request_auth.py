"""Authenticate a signed request: signature (or AuthToken), then the nonce.

One code path for every signed operation. The signature is verified *before* the
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
from dataclasses import dataclass

from tidegate.auth.nonces import check_nonce, consume_nonce
from tidegate.auth.signatures import InvalidSignatureError, verify_signer
from tidegate.auth.tokens import AuthTokens, InvalidTokenError
from tidegate.errors import BadRequestError, ValidationError
from tidegate.stores.base import Store
from tidegate.types import Nonce, checksum_address, is_address


@dataclass(frozen=True)
class SignedRequest:
    """A claim to act as ``signer``, and its proof; independent of any wire protocol.

    ``message`` is the operation's signed text *without* the nonce (the wire protocol
    decides its format: :mod:`tidegate.auth.signatures` has the Provider API's);
    ``message + nonce.text`` is what ``signature`` must sign. ``auth_token`` may stand
    in for the signature where ``allow_token``. ``nonce`` None: it was not given.
    """

    signer: str
    message: str
    nonce: Nonce | None
    signature: str | None
    auth_token: str | None = None
    allow_token: bool = True


class RequestAuthenticator:
    """Checks who signed a request and consumes its nonce."""

    def __init__(self, store: Store, tokens: AuthTokens,
                 signer_limit: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.tokens = tokens
        self.signer_limit = signer_limit
        """Called with the verified signer; raises to refuse (the rate limit's hook)."""

    async def authenticate(self, request: SignedRequest) -> str:
        """Return the checksummed signer after verifying ``message + nonce``.

        A non-empty ``signature`` takes precedence over ``auth_token`` (as in the
        reference); the token is only considered where ``allow_token``. Raises 400
        (no nonce, not an address), 401 (signature, token, nonce not above the last).
        """
        if request.nonce is None:
            raise ValidationError({"nonce": "The nonce field is required."})
        if not is_address(request.signer):
            raise BadRequestError("The signer is not an Ethereum address.",
                                  code="invalid_address")
        address = checksum_address(request.signer)
        if request.signature:
            verify_signer(request.message + request.nonce.text, request.signature, address)
        elif request.auth_token and request.allow_token:
            holder = await self.tokens.verify(request.auth_token)
            if holder != address:
                raise InvalidTokenError("Token is invalid.")
            if self.signer_limit is not None:
                await self.signer_limit(address)
            await check_nonce(self.store, address, request.nonce)
            return address
        else:
            raise InvalidSignatureError("Missing signature or AuthToken.", code="missing_signature")
        if self.signer_limit is not None:
            await self.signer_limit(address)
        await consume_nonce(self.store, address, request.nonce)
        return address
