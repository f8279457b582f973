"""Signed-request messages and signer recovery (EIP-191 over a 32-byte keccak).

Every client signs ``keccak256(utf8(message))`` as a personal message over the 32
raw digest bytes; the message is the operation's fields concatenated without
separators, then the nonce exactly as received. ocean.py and Aquarius send ``v`` as
0/1, ocean.js as 27/28: both are accepted.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

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


def node_message(signer: str, nonce_text: str, command: str) -> str:
    """Ocean Node's signed text (ocean.js >= 6): the address and nonce as sent, the command.

    ``command`` is the protocol command's name (ocean.js ``PROTOCOL_COMMANDS``:
    ``download``, ``encrypt``, ``createAuthToken``, ``decryptDDO`` ...).
    """
    return signer + nonce_text + command


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


def _eip191(data: bytes) -> bytes:
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)


def _node_readings(message: str) -> Iterator[bytes]:
    """:func:`node_personal_digests`, one at a time (the later ones are rarely needed)."""
    digest = message_digest(message)
    yield _eip191(digest)
    stripped = digest.lstrip(b"\x00")
    if stripped != digest:
        yield _eip191(stripped)
    yield _eip191(("0x" + digest.hex()).encode("ascii"))


def node_personal_digests(message: str) -> tuple[bytes, ...]:
    """The EIP-191 hashes an Ocean Node client may have signed for ``message``.

    ocean.js >= 6 signs ``ethers.toBeArray(keccak)``: the digest as a *number*, so a
    digest whose first bytes are zero is signed without them (31 bytes, with the
    prefix's length saying so). Other clients sign the 32 bytes (as for the classic
    messages), and Ocean Node also accepts the 66-character hex text of the digest.
    All three are accepted; Ocean Node itself, comparing only the stripped form and the
    text, refuses a correct 32-byte signature of a digest that starts with a zero byte.
    """
    return tuple(_node_readings(message))


def contract_hashes(message: str) -> tuple[bytes, bytes]:
    """What a smart account is asked to approve for ``message`` (ERC-1271), in Ocean
    Node's order: the message's keccak, then its EIP-191 hash (``hashMessage``)."""
    return message_digest(message), _eip191(message.encode("utf-8"))


def _recover(raw: bytes, digest: bytes) -> str:
    try:
        # libsecp256k1 through coincurve: a quarter of eth_account's cost per request.
        # It refuses r or s of zero or >= the curve order, as eth_keys does.
        public = PublicKey.from_signature_and_message(
            raw[:64] + bytes([raw[64] - 27]), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises ValueError / its own errors
        raise InvalidSignatureError("Invalid signature: cannot recover the signer.") from exc
    return checksum_address("0x" + keccak(public.format(compressed=False)[1:])[-20:].hex())


def recover_signer(message: str, signature: str) -> str:
    """The checksummed address that signed ``message``; raises InvalidSignatureError."""
    return _recover(_signature_bytes(signature), personal_digest(message))


def signed_reading(claimed: str, signature: str, *, messages: tuple[str, ...] = (),
                   node_messages: tuple[str, ...] = (), node_first: bool = False) -> str | None:
    """Which form ``claimed`` signed: ``"classic"`` (one of ``messages``, the 32-byte
    reading), ``"node"`` (one of ``node_messages``, any of :func:`node_personal_digests`),
    or None.

    Each reading is one public-key recovery; the first that gives ``claimed`` decides.
    ``node_first`` only changes the order they are tried in, never the answer: a caller
    that knows which form a signer used last passes it so that the usual case costs one
    recovery in either generation. Raises InvalidSignatureError for a malformed signature.
    """
    raw = _signature_bytes(signature)
    address = checksum_address(claimed)
    classic = (("classic", personal_digest(m)) for m in messages)
    node = (("node", d) for m in node_messages for d in _node_readings(m))
    for kind, digest in itertools.chain(*((node, classic) if node_first else (classic, node))):
        try:
            if _recover(raw, digest) == address:
                return kind
        except InvalidSignatureError:
            continue
    return None


def signed_by(claimed: str, signature: str, *, messages: tuple[str, ...] = (),
              node_messages: tuple[str, ...] = ()) -> bool:
    """Whether ``claimed`` signed one of ``messages`` (the classic 32-byte reading) or
    one of ``node_messages`` (any of :func:`node_personal_digests`)."""
    return signed_reading(claimed, signature, messages=messages,
                          node_messages=node_messages) is not None


def verify_signer(message: str, signature: str, claimed: str) -> None:
    """Raise InvalidSignatureError unless ``claimed`` signed ``message``."""
    if recover_signer(message, signature) != checksum_address(claimed):
        raise InvalidSignatureError(
            "Invalid signature: it was not made by the given address for this message."
        )


def sign_node_message(message: str, private_key: str) -> str:
    """Sign like ocean.js >= 6 (``signMessage(toBeArray(keccak))``: leading zero bytes of
    the digest dropped). Used by Tidegate's tests and tools."""
    data = message_digest(message).lstrip(b"\x00")
    signed = Account.sign_message(encode_defunct(primitive=data), private_key)
    return "0x" + bytes(signed.signature).hex()


def sign_message(message: str, private_key: str) -> str:
    """Sign like ocean.js (v = 27/28). Used by Tidegate itself and by tests."""
    signed = Account.sign_message(encode_defunct(primitive=message_digest(message)), private_key)
    return "0x" + bytes(signed.signature).hex()
