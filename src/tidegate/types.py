"""Shared vocabulary: Ethereum addresses, checked and checksummed (cached)."""

from __future__ import annotations

from functools import lru_cache

from eth_utils import is_address as eth_is_address
from eth_utils import to_checksum_address


@lru_cache(maxsize=16384)
def checksum_address(value: str) -> str:
    """EIP-55 form of ``value`` (cached: checksumming hashes with keccak every time).

    Raises ``ValueError`` when ``value`` is not a 20-byte hex address; only valid
    results are cached, so the cache holds at most ``maxsize`` real addresses.
    """
    return str(to_checksum_address(value))


def is_address(value: str) -> bool:
    """Whether ``value`` is 20 bytes of hex (eth_utils' rule: any letter case), cached."""
    # Only strings short enough to be an address reach the cache: it stays small.
    return len(value) <= _ADDRESS_TEXT_MAX and _is_address(value)


_ADDRESS_TEXT_MAX = 42  # "0x" + 40 hex digits


@lru_cache(maxsize=16384)
def _is_address(value: str) -> bool:
    return bool(eth_is_address(value))
