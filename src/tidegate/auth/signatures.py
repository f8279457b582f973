"""Signed-request messages and signer recovery (EIP-191 over a 32-byte keccak).

Every client signs ``keccak256(utf8(message))`` as a personal message over the 32
raw digest bytes; the message is the operation's fields concatenated without
separators, then the nonce exactly as received. ocean.py and Aquarius send ``v`` as
0/1, ocean.js as 27/28: both are accepted.
"""

from __future__ import annotations

from coincurve import PublicKey
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

from tidegate.errors import UnauthorizedError
from tidegate.types import checksum_address


class InvalidSignatureError(UnauthorizedError):
    code = "invalid_signature"


def download_message(did: str) -> str:
    """``GET /download``: the DID (nonce appended by the caller)."""
    return did


def decrypt_message(transaction_id: str | None, data_nft_address: str, decrypter: str,
                    chain_id: str) -> str:
    """``POST /decrypt``: transactionId if given, else dataNftAddress; then decrypter, chain."""
    return (transaction_id or data_nft_address) + decrypter + chain_id


def compute_message(owner: str, job_id: str, did: str) -> str:
    """Compute start/stop/delete: owner + jobId + documentId (absent parts empty)."""
    return owner + job_id + did


def compute_result_message(owner: str, job_id: str, index: str) -> str:
    """``GET /computeResult``: owner + jobId + index."""
    return owner + job_id + index


def auth_token_message(address: str) -> str:
    """create/deleteAuthToken: the address."""
    return address


def message_digest(message: str) -> bytes:
    """keccak256 of the UTF-8 message: what the client signs as a personal message."""
    return keccak(message.encode("utf-8"))


def _signature_bytes(signature: str) -> bytes:
    text = signature.removeprefix("0x")
    if len(text) != 130:
        raise InvalidSignatureError("Invalid signature: expected 65 bytes of hex.")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise InvalidSignatureError("Invalid signature: not hex.") from exc
    v = raw[64]
    if v in (0, 1):
        raw = raw[:64] + bytes([v + 27])
    elif v not in (27, 28):
        raise InvalidSignatureError("Invalid signature: bad recovery id.")
    return raw


def personal_digest(message: str) -> bytes:
    """The EIP-191 hash a wallet signs for ``message``: personal-sign over its keccak."""
    return keccak(_PERSONAL_PREFIX + message_digest(message))


_PERSONAL_PREFIX = b"\x19Ethereum Signed Message:\n32"


def recover_signer(message: str, signature: str) -> str:
    """The checksummed address that signed ``message``; raises InvalidSignatureError."""
    raw = _signature_bytes(signature)
    try:
        # libsecp256k1 through coincurve: a quarter of eth_account's cost per request.
        # It refuses r or s of zero or >= the curve order, as eth_keys does.
        public = PublicKey.from_signature_and_message(
            raw[:64] + bytes([raw[64] - 27]), personal_digest(message), hasher=None
        )
    except Exception as exc:  # coincurve raises ValueError / its own errors
        raise InvalidSignatureError("Invalid signature: cannot recover the signer.") from exc
    return checksum_address("0x" + keccak(public.format(compressed=False)[1:])[-20:].hex())


def verify_signer(message: str, signature: str, claimed: str) -> None:
    """Raise InvalidSignatureError unless ``claimed`` signed ``message``."""
    if recover_signer(message, signature) != checksum_address(claimed):
        raise InvalidSignatureError(
            "Invalid signature: it was not made by the given address for this message."
        )


def sign_message(message: str, private_key: str) -> str:
    """Sign like ocean.js (v = 27/28). Used by Tidegate itself and by tests."""
    signed = Account.sign_message(encode_defunct(primitive=message_digest(message)), private_key)
    return "0x" + bytes(signed.signature).hex()
