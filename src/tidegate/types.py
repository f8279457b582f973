"""Shared vocabulary types."""

from __future__ import annotations

from typing import NewType

ChainId = NewType("ChainId", int)
Address = NewType("Address", str)
"""An EIP-55 checksummed Ethereum address."""
Did = NewType("Did", str)
TxHash = NewType("TxHash", str)
