"""The chains as the operator configured them, and the rules that pick per-chain values.

The reference Provider's per-chain variables (``PROVIDER_PRIVATE_KEY``, ``NETWORK_URL``,
``PROVIDER_FEE_TOKEN``) hold one value for every chain or a JSON map chainId -> value:
:class:`PerChain` is that shape. :class:`ChainSetup` is what the composition root hands
to :func:`tidegate.chain.clients.discover_chains`, which resolves it once, at start-up,
into one :class:`~tidegate.chain.clients.ChainConfig` per chain: the rules below are the
only place that chooses a chain's key or fee token.

Pure values: no I/O, no web3, nothing read from the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Generic, TypeVar

from pydantic import SecretStr

from tidegate.errors import ConfigurationError

T = TypeVar("T")

ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class PerChain(Generic[T]):
    """One value for every chain (``single``), or one per chain id (``by_chain``).

    At most one of the two forms is set; neither set means "not configured".
    """

    single: T | None = None
    by_chain: Mapping[int, T] = field(default_factory=dict)

    @property
    def is_map(self) -> bool:
        """True for the JSON map form."""
        return bool(self.by_chain)

    def get(self, chain_id: int) -> T | None:
        """The value for ``chain_id``: the map's entry in map form, else the single value."""
        if self.by_chain:
            return self.by_chain.get(chain_id)
        return self.single


@dataclass(frozen=True)
class ChainSetup:
    """Everything configured about chains, before any RPC is asked anything.

    ``rpc_urls`` and ``provider_keys`` use the same form (Settings checks it): with maps,
    the chain ids are their keys; with single values, the chain id is asked of the RPC.
    ``repr`` shows no URL (RPC URLs often carry an API key) and no key.
    """

    rpc_urls: PerChain[str] = field(repr=False)
    provider_keys: PerChain[SecretStr]
    fee_tokens: PerChain[str] = field(default_factory=PerChain)
    address_file: Path | None = None
    """``ADDRESS_FILE``; None: the addresses packaged with ocean-contracts."""
    rpc_timeout: float = 10.0
    state_ttl: float = 0.0
    """How long an NFT's metadata state read is reused (``TIDEGATE_CHAIN_STATE_TTL``)."""

    def provider_key(self, chain_id: int) -> str:
        """The provider's private key on ``chain_id`` (the map's entry, or the single key)."""
        key = self.provider_keys.get(chain_id)
        if key is None:  # Settings rejects maps that differ, so only a caller's bug lands here
            raise ConfigurationError(f"PROVIDER_PRIVATE_KEY has no key for chain {chain_id}")
        return key.get_secret_value()

    def fee_token(self, chain_id: int, addresses: Mapping[str, str]) -> str:
        """The fee token quoted on ``chain_id``, for access and compute alike.

        ``PROVIDER_FEE_TOKEN`` for the chain (single value, or the map's entry), else the
        chain's ``Ocean`` from the address file, else the zero address (as the reference).
        """
        return self.fee_tokens.get(chain_id) or addresses.get("Ocean", ZERO_ADDRESS)


def chain_independent_key(universal: SecretStr | None,
                          provider_keys: PerChain[SecretStr]) -> SecretStr | None:
    """The key for duties that belong to no chain (operator-service requests, DDO proofs).

    ``UNIVERSAL_PRIVATE_KEY``; else the single ``PROVIDER_PRIVATE_KEY``; else, with a
    JSON map of keys, the key of the lowest chain id. The reference stops at the second
    rule (with a map and no universal key those duties fail); the third keeps them
    working, and the lowest chain id is a choice that does not depend on the order of
    the JSON map (docs/configuration.md). None only when no key is configured at all.
    """
    if universal is not None:
        return universal
    if provider_keys.single is not None:
        return provider_keys.single
    if provider_keys.by_chain:
        return provider_keys.by_chain[min(provider_keys.by_chain)]
    return None
