"""ERC-1271: ask a smart account whether it approves a signature of a hash.

``isValidSignature(bytes32 hash, bytes signature)`` answers the magic value
``0x1626ba7e`` when the wallet accepts it. An address without code, a revert or any
other answer means no, and so does an unreachable RPC (as in Ocean Node): the wallet is
only asked after no key's signature matched, and a request signed wrongly by a key
must stay a 401 when the chain is down.
"""

from __future__ import annotations

from typing import Any, Final

from eth_abi.abi import encode

from tidegate.chain.rpc import ContractCallError, rpc
from tidegate.errors import ServiceUnavailableError

MAGIC: Final = bytes.fromhex("1626ba7e")
"""``bytes4(keccak256("isValidSignature(bytes32,bytes)"))``: the selector and the yes."""


async def approves(web3: Any, wallet: str, digest: bytes, signature: bytes) -> bool:
    """Whether the contract at ``wallet`` approves ``signature`` over ``digest``."""
    data = MAGIC + encode(["bytes32", "bytes"], [digest, signature])
    try:
        answer = await rpc(web3.eth.call({"to": wallet, "data": "0x" + data.hex()}),
                           "isValidSignature")
    except (ContractCallError, ServiceUnavailableError):
        return False
    return bytes(answer)[:32] == MAGIC + bytes(28)


async def approves_any(web3: Any, wallet: str, digests: tuple[bytes, ...],
                       signature: bytes) -> bool:
    """Whether the wallet approves ``signature`` over one of ``digests`` (in order)."""
    for digest in digests:
        if await approves(web3, wallet, digest, signature):
            return True
    return False
