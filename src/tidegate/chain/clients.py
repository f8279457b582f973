"""Configured chains: chain id -> RPC URL and the provider's key on that chain.

With ``NETWORK_URL`` as a JSON map the chain ids are its keys (no RPC call, as in
the reference). With a single URL the chain id is asked of the RPC once, at start.
A request for a chain that is not configured is a 400 (decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from eth_account import Account

from tidegate.errors import BadRequestError, ServiceUnavailableError
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


def _config(chain_id: int, url: str, key: str) -> ChainConfig:
    return ChainConfig(chain_id, url, key, Account.from_key(key).address)


async def discover_chains(settings: Settings, http: httpx.AsyncClient) -> Chains:
    """Build the chain table from settings (one RPC call in single-URL mode)."""
    if settings.network_urls:
        return Chains(
            {
                cid: _config(cid, url, settings.provider_keys[cid])
                for cid, url in settings.network_urls.items()
            }
        )
    assert settings.network_url is not None and settings.provider_key is not None
    cid = await rpc_chain_id(http, settings.network_url, settings.rpc_timeout)
    return Chains({cid: _config(cid, settings.network_url, settings.provider_key)})
