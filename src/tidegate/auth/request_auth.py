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
from tidegate.auth.signatures import (
    InvalidSignatureError,
    contract_hashes,
    node_message,
    signed_reading,
    verify_signer,
)
from tidegate.auth.tokens import AuthTokens, InvalidTokenError
from tidegate.errors import BadRequestError, ValidationError
from tidegate.stores.base import Store
from tidegate.types import Nonce, checksum_address, is_address

_HINTS = 100_000
"""Signers whose last signature form is remembered (about 10 MB at most)."""


@dataclass(frozen=True)
class SignedRequest:
    """A claim to act as ``signer``, and its proof; independent of any wire protocol.

    ``message`` is the operation's signed text *without* the nonce in the Provider API's
    format (:mod:`tidegate.auth.signatures`): ``message + nonce.text`` is what
    ``signature`` signs. ``command`` is the operation's name in Ocean Node's protocol:
    the signature may sign ``signer + nonce.text + command`` instead (in any of the
    digest readings of :func:`~tidegate.auth.signatures.node_personal_digests`). Either
    may be None where that generation has no signed form. ``auth_token`` may stand in
    for the signature where ``allow_token`` (with a nonce, checked but not advanced,
    unless ``token_needs_nonce`` is False and none was given). ``nonce`` None: it was
    not given.
    """

    signer: str
    message: str | None
    nonce: Nonce | None
    signature: str | None
    auth_token: str | None = None
    allow_token: bool = True
    command: str | None = None
    token_needs_nonce: bool = True
    """False for Ocean Node's ``Authorization`` token, which its clients send alone."""


ContractSigner = Callable[[str, tuple[bytes, ...], bytes], Awaitable[bool]]
"""``(wallet, hashes, signature)``: whether the smart account at ``wallet`` approves
``signature`` over one of ``hashes`` (ERC-1271; built by the composition root)."""


def _signature_bytes(signature: str) -> bytes | None:
    try:
        return bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        return None


class RequestAuthenticator:
    """Checks who signed a request and consumes its nonce."""

    def __init__(self, store: Store, tokens: AuthTokens,
                 signer_limit: Callable[[str], Awaitable[None]] | None = None,
                 contract_signer: ContractSigner | None = None) -> None:
        self.store = store
        self.tokens = tokens
        self.signer_limit = signer_limit
        """Called with the verified signer; raises to refuse (the rate limit's hook)."""
        self.contract_signer = contract_signer
        """ERC-1271, for Ocean Node's signed form when no key's signature matches."""
        self._node_signer: dict[str, bool] = {}
        """Signer -> whether its last signature of a two-form operation was Ocean Node's:
        that form is tried first next time (one recovery, not two, in either generation;
        the answer never depends on it)."""

    async def _verify(self, request: SignedRequest, nonce: Nonce, signature: str,
                      address: str) -> None:
        if request.command is None and request.message is not None:
            verify_signer(request.message + nonce.text, signature, address)  # the hot path
            return
        classic = () if request.message is None else (request.message + nonce.text,)
        node = () if request.command is None else (
            node_message(request.signer, nonce.text, request.command),)
        try:
            kind = signed_reading(address, signature, messages=classic, node_messages=node,
                                  node_first=self._node_signer.get(address, False))
        except InvalidSignatureError:
            kind = None  # not a key's signature: a smart account's may have any length
        if kind is not None:
            if classic and node:
                if len(self._node_signer) >= _HINTS:
                    self._node_signer.clear()  # rare; costs one extra recovery per signer
                self._node_signer[address] = kind == "node"
            return
        raw = _signature_bytes(signature)
        if (node and raw is not None and self.contract_signer is not None
                and await self.contract_signer(address, contract_hashes(node[0]), raw)):
            return
        raise InvalidSignatureError(
            "Invalid signature: it was not made by the given address for this message.")

    async def authenticate(self, request: SignedRequest) -> str:
        """Return the checksummed signer after verifying ``message + nonce``.

        A non-empty ``signature`` takes precedence over ``auth_token`` (as in the
        reference); the token is only considered where ``allow_token``. Raises 400
        (no nonce, not an address), 401 (signature, token, nonce not above the last).
        """
        tokenless_nonce = (request.nonce is None and not request.token_needs_nonce
                           and not request.signature and bool(request.auth_token)
                           and request.allow_token)
        if request.nonce is None and not tokenless_nonce:
            raise ValidationError({"nonce": "The nonce field is required."})
        if not is_address(request.signer):
            raise BadRequestError("The signer is not an Ethereum address.",
                                  code="invalid_address")
        address = checksum_address(request.signer)
        if request.nonce is None:
            # Ocean Node's protocol: a token stands alone (its clients send no nonce).
            assert request.auth_token is not None
            if await self.tokens.verify(request.auth_token) != address:
                raise InvalidTokenError("Token is invalid.")
            if self.signer_limit is not None:
                await self.signer_limit(address)
            return address
        if request.signature:
            await self._verify(request, request.nonce, request.signature, address)
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
