"""Configured chains: chain id -> RPC URL and the provider's key on that chain.

With ``NETWORK_URL`` as a JSON map the chain ids are its keys (no RPC call, as in
the reference). With a single URL the chain id is asked of the RPC once, at start.
A request for a chain that is not configured is a 400 (decisions.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.middleware import ExtraDataToPOAMiddleware

from tidegate.chain.contracts import load_address_file, packaged_address_file_path
from tidegate.errors import BadRequestError, ConfigurationError, ServiceUnavailableError
from tidegate.settings import Settings


class UnsupportedChainError(BadRequestError):
    code = "unsupported_chain"


@dataclass(frozen=True)
class ChainConfig:
    """One configured chain and the provider identity on it."""

    chain_id: int
    rpc_url: str
    provider_key: str
    provider_address: str
    web3: AsyncWeb3[AsyncHTTPProvider]
    addresses: Mapping[str, str]
    """Contract name -> address from the address file ({} if the chain is not in it)."""

    def contract_address(self, name: str) -> str:
        """Address of an Ocean contract on this chain; 503 if the address file lacks it."""
        try:
            return self.addresses[name]
        except KeyError:
            raise ServiceUnavailableError(
                f"No {name} address is configured for chain {self.chain_id} (ADDRESS_FILE)."
            ) from None


@dataclass(frozen=True)
class Chains:
    """All configured chains, by id."""

    by_id: dict[int, ChainConfig]

    @property
    def ids(self) -> list[int]:
        return sorted(self.by_id)

    def get(self, chain_id: int) -> ChainConfig:
        try:
            return self.by_id[chain_id]
        except KeyError:
            raise UnsupportedChainError(f"Unsupported chain id {chain_id}.") from None

    def parse_and_get(self, raw: object) -> ChainConfig:
        """Look up a chain id given as request text or JSON number."""
        text = str(raw).strip() if raw is not None else ""
        if not text.isdigit():
            raise BadRequestError("The chainId must be an integer.", code="invalid_chain_id")
        return self.get(int(text))


async def rpc_chain_id(http: httpx.AsyncClient, url: str, rpc_timeout: float) -> int:
    """Ask an RPC for its chain id (``eth_chainId``)."""
    try:
        response = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            timeout=rpc_timeout,
        )
        return int(response.json()["result"], 16)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise ServiceUnavailableError("The chain RPC did not answer eth_chainId.") from exc


def build_web3(url: str, rpc_timeout: float) -> AsyncWeb3[AsyncHTTPProvider]:
    """An AsyncWeb3 for ``url`` that tolerates PoA chains (long extraData)."""
    w3 = AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": rpc_timeout}))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


def load_addresses(settings: Settings) -> dict[int, dict[str, str]]:
    """Contract addresses per chain from ``ADDRESS_FILE`` or the packaged file."""
    path: Path = settings.address_file or packaged_address_file_path()
    try:
        return load_address_file(path)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"ADDRESS_FILE cannot be read: {exc}") from exc


async def discover_chains(settings: Settings, http: httpx.AsyncClient) -> Chains:
    """Build the chain table from settings (one RPC call in single-URL mode)."""
    addresses = load_addresses(settings)

    def config(chain_id: int, url: str, key: str) -> ChainConfig:
        return ChainConfig(
            chain_id, url, key, Account.from_key(key).address,
            build_web3(url, settings.rpc_timeout), addresses.get(chain_id, {}),
        )

    if settings.network_urls:
        return Chains(
            {
                cid: config(cid, url, settings.provider_keys[cid])
                for cid, url in settings.network_urls.items()
            }
        )
    assert settings.network_url is not None and settings.provider_key is not None
    cid = await rpc_chain_id(http, settings.network_url, settings.rpc_timeout)
    return Chains({cid: config(cid, settings.network_url, settings.provider_key)})
