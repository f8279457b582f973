"""Data NFT reads: factory provenance, metadata state, metadata events of a tx."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Final

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD
from web3.types import RPCEndpoint

from tidegate.chain.clients import ChainConfig
from tidegate.chain.contracts import load_artifact
from tidegate.chain.rpc import ContractCallError, rpc
from tidegate.errors import BadRequestError
from tidegate.types import TX_HASH_TEXT, checksum_address


@dataclass(frozen=True)
class MetadataEvent:
    """A ``MetadataCreated``/``MetadataUpdated`` emitted by the data NFT itself."""

    data: bytes
    flags: int
    document_hash: bytes
    state: int
    block_number: int
    tx_hash: str
    updated: bool


@cache
def _abi(name: str) -> Any:
    return load_artifact(name).abi


@lru_cache(maxsize=4096)
def _contract(web3: Any, name: str, address: str) -> Any:
    # Building a web3 contract object costs milliseconds (ABI parsing): keep them.
    return web3.eth.contract(address=address, abi=_abi(name))


def nft_contract(chain: ChainConfig, nft: str) -> Any:
    return _contract(chain.web3, "ERC721Template", to_checksum_address(nft))


async def is_factory_nft(chain: ChainConfig, nft: str) -> bool:
    """True if the Ocean ERC721Factory of this chain deployed ``nft``."""
    factory = _contract(chain.web3, "ERC721Factory",
                        to_checksum_address(chain.contract_address("ERC721Factory")))
    listed = await rpc(factory.functions.erc721List(to_checksum_address(nft)).call(),
                       "ERC721Factory.erc721List")
    return bool(listed) and to_checksum_address(str(listed)) == to_checksum_address(nft)


# getMetaData() -> (string, string, uint8 state, bool hasMetadata)
_GET_METADATA: Final = "0x" + keccak(text="getMetaData()")[:4].hex()
_GET_METADATA_OUTPUT: Final = ("string", "string", "uint8", "bool")


async def metadata_state(chain: ChainConfig, nft: str) -> int:
    """The on-chain ``metaDataState`` of a data NFT (see ``assets.consumability``).

    Called on every initialize and download. A read is reused for ``chain.state_ttl``
    seconds (``TIDEGATE_CHAIN_STATE_TTL``, default 1 s: shorter than any real chain's
    block time, so a revocation is seen by the next block anyway). The read is one raw
    ``eth_call`` on the chain's provider: web3's contract-call path (ABI lookup,
    argument validation, middleware) cost several times the round trip itself. A
    revert or an address without the function raises ContractCallError (400); RPC
    trouble 503.
    """
    address = checksum_address(nft)
    cached = chain.state_cache.get(address)
    if cached is not None and time.monotonic() - cached[0] < chain.state_ttl:
        return cached[1]
    if chain.state_ttl <= 0:
        return await _read_metadata_state(chain, address)
    # One read per NFT at a time: when the entry expires under load, every request in
    # flight misses at once, and each sent its own eth_call (256 at 256 connections).
    read = chain.state_reads.get(address)
    if read is None:
        read = asyncio.ensure_future(_read_and_remember(chain, address))
        chain.state_reads[address] = read
        read.add_done_callback(lambda done: _forget_read(chain, address, done))
    # Shielded: a request cancelled (its client left) does not cancel the others' read.
    return await asyncio.shield(read)


def _forget_read(chain: ChainConfig, address: str, read: asyncio.Future[int]) -> None:
    if chain.state_reads.get(address) is read:
        del chain.state_reads[address]
    if not read.cancelled():
        read.exception()  # retrieved here too, in case every waiter was cancelled


async def _read_and_remember(chain: ChainConfig, address: str) -> int:
    state = await _read_metadata_state(chain, address)
    if len(chain.state_cache) >= _STATE_CACHE_SIZE:
        chain.state_cache.clear()  # rare; a full cache only costs one read per NFT
    chain.state_cache[address] = (time.monotonic(), state)
    return state


_STATE_CACHE_SIZE: Final = 10_000


async def _read_metadata_state(chain: ChainConfig, address: str) -> int:
    call = {"to": address, "data": _GET_METADATA}
    response = await rpc(chain.web3.provider.make_request(RPCEndpoint("eth_call"),
                                                          [call, "latest"]),
                         "ERC721Template.getMetaData")
    result = response.get("result")
    if "error" in response or not isinstance(result, str):
        raise ContractCallError("The contract call failed: ERC721Template.getMetaData.")
    try:
        decoded = abi_decode(_GET_METADATA_OUTPUT, bytes.fromhex(result.removeprefix("0x")))
    except (DecodingError, ValueError) as exc:  # "0x": no contract, or not an NFT
        raise ContractCallError(
            "The contract call failed: ERC721Template.getMetaData.") from exc
    return int(decoded[2])


def _decode(w3: AsyncWeb3[Any], contract: Any, receipt: Any) -> MetadataEvent | None:
    address = contract.address
    # Only logs the NFT itself emitted count (the reference matched by topic only).
    own = {**receipt, "logs": [log for log in receipt["logs"]
                               if to_checksum_address(log["address"]) == address]}
    for updated, event in ((False, contract.events.MetadataCreated()),
                           (True, contract.events.MetadataUpdated())):
        decoded = event.process_receipt(own, errors=DISCARD)
        if decoded:
            args = decoded[0]["args"]
            return MetadataEvent(
                data=bytes(args["data"]),
                flags=int(bytes(args["flags"])[0]) if bytes(args["flags"]) else 0,
                document_hash=bytes(args["metaDataHash"]),
                state=int(args["state"]),
                block_number=int(receipt["blockNumber"]),
                tx_hash=HexBytes(receipt["transactionHash"]).to_0x_hex(),
                updated=updated,
            )
    return None


async def metadata_event_from_tx(chain: ChainConfig, nft: str, tx_hash: str) -> MetadataEvent:
    """The metadata event that ``nft`` emitted in transaction ``tx_hash``."""
    if not TX_HASH_TEXT.fullmatch(tx_hash):
        raise BadRequestError("Failed to process transaction id.", code="invalid_transaction")
    try:
        receipt = await rpc(chain.web3.eth.get_transaction_receipt(HexBytes(tx_hash)),
                            "eth_getTransactionReceipt")
    except TransactionNotFound:
        receipt = None
    if receipt is None:
        raise BadRequestError("Failed to process transaction id.", code="invalid_transaction")
    event = _decode(chain.web3, nft_contract(chain, nft), receipt)
    if event is None:
        raise BadRequestError("Failed to process transaction id.", code="invalid_transaction")
    return event
