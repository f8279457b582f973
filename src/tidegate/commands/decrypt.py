"""Decrypt an on-chain DDO for an authorised decrypter (Aquarius, indexers).

Two ways to name the document: the ``transactionId`` of a ``setMetaData`` (its
``MetadataCreated``/``MetadataUpdated`` must come from ``dataNftAddress`` itself), or
the ``encryptedDocument`` + ``flags`` + ``documentHash`` directly. The NFT must come
from the Ocean factory and be in a state that allows decryption.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from eth_utils import is_address, to_checksum_address

from tidegate.assets.documents import decode_document
from tidegate.auth.request_auth import RequestAuthenticator
from tidegate.auth.signatures import decrypt_message
from tidegate.chain.clients import Chains
from tidegate.chain.nft import (
    MetadataState,
    is_factory_nft,
    metadata_event_from_tx,
    metadata_state,
)
from tidegate.errors import BadRequestError, ForbiddenError

_HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})*$")
_STATE_REFUSALS = {
    MetadataState.END_OF_LIFE: ("Asset end of life", "asset_end_of_life"),
    MetadataState.DEPRECATED: ("Asset deprecated", "asset_deprecated"),
    MetadataState.REVOKED: ("Asset revoked", "asset_revoked"),
}
_DECRYPTABLE = {MetadataState.ACTIVE, MetadataState.TEMPORARILY_DISABLED, MetadataState.UNLISTED}


@dataclass(frozen=True)
class DecryptRequest:
    decrypter: str
    chain_id: str
    data_nft: str
    nonce: str
    signature: str | None
    auth_token: str | None
    transaction_id: str | None = None
    encrypted_document: str | None = None
    flags: str | None = None
    document_hash: str | None = None


def _hex_bytes(value: str, what: str) -> bytes:
    if not _HEX.match(value):
        raise BadRequestError(f"Failed to convert input args to bytes ({what}).",
                              code="invalid_hex")
    return bytes.fromhex(value.removeprefix("0x"))


def _direct_document(req: DecryptRequest) -> tuple[bytes, int, bytes]:
    if req.encrypted_document is None or req.flags is None or req.document_hash is None:
        raise BadRequestError(
            "Give transactionId, or encryptedDocument, flags and documentHash.",
            code="missing_document",
        )
    if not req.flags.strip().isdigit() or int(req.flags) > 255:
        raise BadRequestError("The flags must be an integer 0-255.", code="invalid_flags")
    document_hash = _hex_bytes(req.document_hash, "documentHash")
    if len(document_hash) != 32:
        raise BadRequestError("The documentHash must be 32 bytes.", code="invalid_hex")
    return _hex_bytes(req.encrypted_document, "encryptedDocument"), int(req.flags), document_hash


async def decrypt_ddo(
    req: DecryptRequest,
    chains: Chains,
    authenticator: RequestAuthenticator,
    authorized_decrypters: tuple[str, ...],
) -> bytes:
    """Verify the request and return the exact plaintext document bytes."""
    chain = chains.parse_and_get(req.chain_id)
    if not is_address(req.data_nft):
        raise BadRequestError("The dataNftAddress is not an address.", code="invalid_address")
    decrypter = await authenticator.authenticate(
        signer=req.decrypter,
        message=decrypt_message(req.transaction_id, req.data_nft, req.decrypter, req.chain_id),
        nonce=req.nonce, signature=req.signature, auth_token=req.auth_token,
    )
    if authorized_decrypters and decrypter not in authorized_decrypters:
        raise ForbiddenError("Decrypter not authorized", code="decrypter_not_authorized")
    nft = to_checksum_address(req.data_nft)
    if not await is_factory_nft(chain, nft):
        raise BadRequestError("Asset not deployed by the data NFT factory.",
                              code="nft_not_from_factory")
    if req.transaction_id:
        event = await metadata_event_from_tx(chain, nft, req.transaction_id)
        data, flags, document_hash = event.data, event.flags, event.document_hash
    else:
        data, flags, document_hash = _direct_document(req)
    state = await metadata_state(chain, nft)
    if state in _STATE_REFUSALS:
        message, code = _STATE_REFUSALS[MetadataState(state)]
        raise ForbiddenError(message, code=code)
    if state not in _DECRYPTABLE:
        raise BadRequestError("Invalid MetadataState", code="invalid_metadata_state")
    if len(data) > 64 * 1024:  # ECIES + LZMA on big documents would stall the loop
        return await asyncio.to_thread(decode_document, data, flags, document_hash,
                                       chain.provider_key)
    return decode_document(data, flags, document_hash, chain.provider_key)
