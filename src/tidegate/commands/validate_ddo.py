"""Validate a DDO before publishing and sign its hash (the proof ``setMetaData`` takes).

Two request forms reach one rule set (:mod:`tidegate.assets.validation`):

- the classic one (ocean.py, ocean.js 3.x): the body *is* the DDO and the hash is of
  the exact bytes posted; unsigned;
- Ocean Node's (ocean.js >= 6 ``Aquarius.validate``): ``{ddo, publisherAddress,
  nonce, signature}``, signed ``publisherAddress + nonce + "validateDDO"`` (or an
  ``Authorization`` token); the hash is of ``JSON.stringify(ddo)``, the text ocean.js
  encrypts and puts on chain. When any credential is given it must be valid and its
  nonce is consumed, as Ocean Node does; an unsigned request is answered too (as the
  classic form is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from tidegate.assets.validation import document_bytes, validation_proof
from tidegate.auth.request_auth import RequestAuthenticator, SignedRequest

VALIDATE_DDO: Final = "validateDDO"
"""ocean.js's ``PROTOCOL_COMMANDS.VALIDATE_DDO``."""


@dataclass(frozen=True)
class NodeValidate:
    """Ocean Node's form: the DDO as parsed, and the requester's proof if one was sent."""

    ddo: Any
    proof: SignedRequest | None


def validate_document(document: bytes, ddo: Any, validator_key: str) -> dict[str, Any]:
    """The classic form: check ``ddo`` and sign the sha256 of the posted ``document``."""
    return validation_proof(document, ddo, validator_key)


async def validate_signed(cmd: NodeValidate, validator_key: str,
                          authenticator: RequestAuthenticator) -> dict[str, Any]:
    """Ocean Node's form: authenticate (if a proof was sent), then check and sign."""
    if cmd.proof is not None:
        await authenticator.authenticate(cmd.proof)
    return validation_proof(document_bytes(cmd.ddo), cmd.ddo, validator_key)
