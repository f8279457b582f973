"""How Ocean Node's clients prove who they are: ``signer + nonce + command``, or a token.

ocean.js >= 6 signs ``consumerAddress + nonce + command`` (the command names are its
``PROTOCOL_COMMANDS``) and sends an auth token raw in ``Authorization`` (no scheme),
without a nonce. The signature forms themselves are :mod:`tidegate.auth.signatures`'.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request

from tidegate.auth.request_auth import SignedRequest
from tidegate.types import Nonce

DOWNLOAD: Final = "download"
ENCRYPT: Final = "encrypt"
DECRYPT_DDO: Final = "decryptDDO"
CREATE_AUTH_TOKEN: Final = "createAuthToken"  # noqa: S105 (a command name)
INVALIDATE_AUTH_TOKEN: Final = "invalidateAuthToken"  # noqa: S105


def node_token(request: Request) -> str | None:
    """The token of ``Authorization`` (raw, as ocean.js sends it, or ``Bearer`` …)."""
    value = request.headers.get("Authorization", "").strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value or None


def request_token(request: Request) -> tuple[str | None, bool]:
    """(token, whether it needs a nonce): the classic ``AuthToken`` header needs one, the
    ``Authorization`` header of Ocean Node's clients stands alone."""
    classic = request.headers.get("AuthToken")
    if classic:
        return classic, True
    return node_token(request), False


def node_proof(signer: str, nonce: Nonce | None, signature: str | None, command: str,
               token: str | None = None, *, allow_token: bool = True) -> SignedRequest:
    """A request signed only in Ocean Node's form (no classic message)."""
    return SignedRequest(signer=signer, message=None, nonce=nonce, signature=signature,
                         auth_token=token, allow_token=allow_token, command=command,
                         token_needs_nonce=False)
