"""Encrypt a document for this provider (publish time)."""

from __future__ import annotations

from dataclasses import dataclass

from tidegate.auth.request_auth import RequestAuthenticator, SignedRequest
from tidegate.chain.clients import ChainConfig
from tidegate.concurrency import cpu_bound
from tidegate.crypto import ecies
from tidegate.errors import BadRequestError


async def encrypt_document(chain: ChainConfig, document: bytes) -> str:
    """ECIES-encrypt ``document`` to the chain's provider key; ``0x``-hex ciphertext."""
    if not document:
        raise BadRequestError("The request body is empty.", code="empty_body")
    public_key = ecies.public_key_hex(chain.provider_key)
    ciphertext = await cpu_bound(len(document), ecies.encrypt, public_key, document)
    return "0x" + ciphertext.hex()


@dataclass(frozen=True)
class SignedEncrypt:
    """Encrypt ``document`` for a proven requester (Ocean Node's protocol signs encrypt)."""

    document: bytes
    proof: SignedRequest


async def encrypt_signed(chain: ChainConfig, cmd: SignedEncrypt,
                         authenticator: RequestAuthenticator) -> str:
    """:func:`encrypt_document` once the requester is authenticated (nonce consumed)."""
    if not cmd.document:
        raise BadRequestError("The request body is empty.", code="empty_body")
    await authenticator.authenticate(cmd.proof)
    return await encrypt_document(chain, cmd.document)
