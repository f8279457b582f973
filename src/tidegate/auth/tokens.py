"""Auth tokens: HS256 JWTs that replace the per-request signature.

Tokens are signed with a dedicated secret (``TIDEGATE_AUTH_TOKEN_SECRET``, or a
random secret generated once and kept in the store so every replica shares it),
never with the provider's private key. The payload is ``{"exp", "address"}`` as in
the reference, so the same address and expiration give the same token; a revoked
token that is created again is restored.

Revocations are persisted by the token's identity, the hash of its canonical text
(re-encoded from the verified payload), never of the text received: a JWT library
accepts other spellings of one token (a padded signature, say), and each of them
must be as revoked as the original.
"""

from __future__ import annotations

import hashlib
import time

import jwt

from tidegate.errors import UnauthorizedError
from tidegate.stores.base import Store
from tidegate.types import checksum_address


class InvalidTokenError(UnauthorizedError):
    code = "invalid_token"


def token_id(token: str) -> str:
    """Store key of a token: its sha256 (the token itself is never stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AuthTokens:
    """Issue, verify and revoke auth tokens."""

    def __init__(self, secret: str, store: Store) -> None:
        self._secret = secret
        self._store = store

    def _encode(self, address: str, expiration: int) -> str:
        return jwt.encode({"exp": expiration, "address": address}, self._secret, "HS256")

    def _identity(self, payload: dict[str, object]) -> str:
        """Store key of a verified token: the hash of its canonical encoding."""
        address, exp = payload.get("address"), payload.get("exp")
        if not isinstance(address, str) or not isinstance(exp, int) or isinstance(exp, bool):
            raise InvalidTokenError("Token is invalid.")
        return token_id(self._encode(address, exp))

    def _decode(self, token: str) -> dict[str, object]:
        try:
            payload: dict[str, object] = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"require": ["exp"]}
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidTokenError("Token is expired.", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError("Token is invalid.") from exc
        return payload

    async def create(self, address: str, expiration: int) -> str:
        """Issue (or restore) the token of ``address`` valid until ``expiration``."""
        if expiration <= int(time.time()):
            raise InvalidTokenError("Token is expired.", code="token_expired")
        token = self._encode(address, expiration)
        await self._store.unrevoke_token(token_id(token))
        return token

    async def verify(self, token: str) -> str:
        """Return the checksummed address of a valid, unexpired, unrevoked token."""
        payload = self._decode(token)
        address = payload.get("address")
        if not isinstance(address, str):
            raise InvalidTokenError("Token is invalid.")
        if await self._store.is_token_revoked(self._identity(payload)):
            raise InvalidTokenError("Token is deleted.", code="token_deleted")
        try:
            return checksum_address(address)
        except ValueError as exc:
            raise InvalidTokenError("Token is invalid.") from exc

    async def revoke(self, token: str, owner: str) -> None:
        """Revoke ``token``; it must be valid and belong to ``owner``."""
        payload = self._decode(token)
        holder = await self.verify(token)
        if holder != checksum_address(owner):
            raise InvalidTokenError("Token is invalid.")
        exp = payload["exp"]  # an int: verify() derived the identity from it
        await self._store.revoke_token(self._identity(payload), exp if isinstance(exp, int) else 0)
