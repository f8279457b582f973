"""ECIES with the provider's secp256k1 key, byte-compatible with eciespy.

Published DDOs already hold ciphertexts produced by the reference Provider
(eciespy 0.3.x / 0.4.x defaults: uncompressed ephemeral key, HKDF-SHA256 over the
uncompressed points, AES-256-GCM with a 16-byte nonce), so we use eciespy itself
rather than re-deriving the format.
"""

from __future__ import annotations

import ecies
from eth_keys import keys

from tidegate.errors import BadRequestError


class DecryptionFailedError(BadRequestError):
    code = "decryption_failed"


def public_key_hex(private_key: str) -> str:
    """The 64-byte uncompressed public key (hex, no prefix) of a hex private key."""
    key = keys.PrivateKey(bytes.fromhex(private_key.removeprefix("0x")))
    return key.public_key.to_bytes().hex()


def compressed_public_key_hex(private_key: str) -> str:
    """The 33-byte compressed public key, ``0x``-hex, of a hex private key.

    The form Ocean Node publishes as ``nodePublicKey`` (its libp2p key's raw bytes);
    eciesjs, which ocean.js encrypts with, reads it as well as the uncompressed one.
    """
    key = keys.PrivateKey(bytes.fromhex(private_key.removeprefix("0x")))
    return "0x" + key.public_key.to_compressed_bytes().hex()


def encrypt(public_key: str, plaintext: bytes) -> bytes:
    """Encrypt ``plaintext`` to ``public_key`` (hex); returns the raw ECIES bytes."""
    result: bytes = ecies.encrypt(public_key, plaintext)
    return result


def decrypt(private_key: str, ciphertext: bytes) -> bytes:
    """Decrypt ECIES bytes with ``private_key``; raises DecryptionFailedError."""
    try:
        result: bytes = ecies.decrypt(private_key.removeprefix("0x"), ciphertext)
    except Exception as exc:  # eciespy raises ValueError / cryptography errors
        raise DecryptionFailedError("Failed to decrypt.") from exc
    return result
