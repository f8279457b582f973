"""On-chain metadata documents: flags, decryption, decompression, hash check.

``setMetaData`` stores ``data`` with a one-byte ``flags`` (bit 1 = LZMA-compressed,
bit 2 = ECIES-encrypted to the provider) and the sha256 of the final plaintext.
Decoding is decrypt first, then decompress, then verify the hash.
"""

from __future__ import annotations

import hashlib
import lzma

from tidegate.crypto import ecies
from tidegate.errors import BadRequestError

COMPRESSED = 1
ENCRYPTED = 2
# A DDO is small; refuse decompression bombs well before memory suffers.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


class DocumentError(BadRequestError):
    code = "invalid_document"


def decompress(data: bytes, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """LZMA (any container format) with an output cap."""
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_AUTO)
    try:
        out = decompressor.decompress(data, max_length=limit + 1)
    except lzma.LZMAError as exc:
        raise DocumentError("Failed to decompress.", code="decompress_failed") from exc
    if len(out) > limit:
        raise DocumentError("The decompressed document is too large.", code="document_too_large")
    return out


def decode_document(data: bytes, flags: int, document_hash: bytes, private_key: str) -> bytes:
    """Turn an on-chain document into its plaintext, verifying its sha256."""
    if flags < 0 or flags > 255:
        raise DocumentError("Invalid flags.", code="invalid_flags")
    plaintext = data
    if flags & ENCRYPTED:
        try:
            plaintext = ecies.decrypt(private_key, plaintext)
        except ecies.DecryptionFailedError as exc:
            raise DocumentError("Failed to decrypt.", code="decryption_failed") from exc
    if flags & COMPRESSED:
        plaintext = decompress(plaintext)
    if hashlib.sha256(plaintext).digest() != document_hash:
        raise DocumentError("Checksum doesn't match.", code="checksum_mismatch")
    return plaintext


def encode_document(plaintext: bytes, flags: int, public_key: str) -> bytes:
    """The inverse of :func:`decode_document` (publishing)."""
    data = plaintext
    if flags & COMPRESSED:
        data = lzma.compress(data)
    if flags & ENCRYPTED:
        data = ecies.encrypt(public_key, data)
    return data
