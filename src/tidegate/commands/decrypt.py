"""Decrypt an on-chain DDO for an authorised decrypter (Aquarius, indexers).

Two ways to name the document: the transaction of a ``setMetaData`` (its
``MetadataCreated``/``MetadataUpdated`` must come from the data NFT itself), or the
encrypted document, flags and hash directly. The NFT must come from the Ocean
factory and be in a state that allows decryption.
"""

from __future__ import annotations

from dataclasses import dataclass

from tidegate.assets.consumability import check_decryptable
from tidegate.assets.documents import decode_document
from tidegate.auth.request_auth import RequestAuthenticator, SignedRequest
from tidegate.chain.clients import Chains
from tidegate.chain.nft import is_factory_nft, metadata_event_from_tx, metadata_state
from tidegate.concurrency import cpu_bound
from tidegate.errors import BadRequestError, ForbiddenError


@dataclass(frozen=True)
class DocumentByTransaction:
    """The document a ``setMetaData`` transaction published."""

    transaction_id: str


@dataclass(frozen=True)
class DirectDocument:
    """The document itself: ``flags`` bit 0 LZMA, bit 1 ECIES; ``document_hash`` sha256."""

    data: bytes
    flags: int
    document_hash: bytes


@dataclass(frozen=True)
class DecryptDocument:
    """Decrypt ``document`` of data NFT ``data_nft`` (checksummed) on ``chain_id`` for the
    signer of ``proof``."""

    chain_id: int
    data_nft: str
    document: DocumentByTransaction | DirectDocument
    proof: SignedRequest


async def decrypt_ddo(
    cmd: DecryptDocument,
    chains: Chains,
    authenticator: RequestAuthenticator,
    authorized_decrypters: tuple[str, ...],
) -> bytes:
    """Verify the request and return the exact plaintext document bytes."""
    chain = chains.get(cmd.chain_id)
    decrypter = await authenticator.authenticate(cmd.proof)
    if authorized_decrypters and decrypter not in authorized_decrypters:
        raise ForbiddenError("Decrypter not authorized", code="decrypter_not_authorized")
    if not await is_factory_nft(chain, cmd.data_nft):
        raise BadRequestError("Asset not deployed by the data NFT factory.",
                              code="nft_not_from_factory")
    document = cmd.document
    if isinstance(document, DocumentByTransaction):
        event = await metadata_event_from_tx(chain, cmd.data_nft, document.transaction_id)
        document = DirectDocument(event.data, event.flags, event.document_hash)
    check_decryptable(await metadata_state(chain, cmd.data_nft))
    # ECIES + LZMA on big documents would stall the loop.
    return await cpu_bound(len(document.data), decode_document, document.data,
                           document.flags, document.document_hash, chain.provider_key)
