"""Encrypt a document for this provider (publish time)."""

from __future__ import annotations

import asyncio

from tidegate.chain.clients import ChainConfig
from tidegate.crypto import ecies
from tidegate.errors import BadRequestError

# Below this size ECIES is cheaper than a thread hop; above it, keep the loop free.
_INLINE_LIMIT = 64 * 1024


async def encrypt_document(chain: ChainConfig, document: bytes) -> str:
    """ECIES-encrypt ``document`` to the chain's provider key; ``0x``-hex ciphertext."""
    if not document:
        raise BadRequestError("The request body is empty.", code="empty_body")
    public_key = ecies.public_key_hex(chain.provider_key)
    if len(document) <= _INLINE_LIMIT:
        ciphertext = ecies.encrypt(public_key, document)
    else:
        ciphertext = await asyncio.to_thread(ecies.encrypt, public_key, document)
    return "0x" + ciphertext.hex()
