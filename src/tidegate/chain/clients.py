"""Configured chains: chain id -> RPC client, the provider's key and fee token on it.

:func:`discover_chains` resolves a :class:`~tidegate.chain.setup.ChainSetup` once, at
start-up, into one :class:`ChainConfig` per chain. With ``NETWORK_URL`` as a JSON map the
chain ids are its keys (no RPC call, as in the reference). With a single URL the chain id
is asked of the RPC once. A request for a chain that is not configured is a 400
(decisions.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import httpx
from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.middleware import ExtraDataToPOAMiddleware
from web3.types import RPCEndpoint, RPCResponse

from tidegate.chain.contracts import load_address_file, packaged_address_file_path
from tidegate.chain.setup import ChainSetup
from tidegate.errors import BadRequestError, ConfigurationError, ServiceUnavailableError


class UnsupportedChainError(BadRequestError):
    code = "unsupported_chain"


@dataclass(frozen=True)
class ChainConfig:
    """One configured chain, everything Tidegate uses on it, resolved once at start-up.

    Built by :func:`discover_chains` (tests build their own); no other module chooses a
    chain's key or fee token. ``repr`` shows neither the key nor the RPC URL.
    """

    chain_id: int
    rpc_url: str = field(repr=False)
    provider_key: str = field(repr=False)
    provider_address: str
    web3: AsyncWeb3[SessionHTTPProvider]
    addresses: Mapping[str, str]
    """Contract name -> address from the address file ({} if the chain is not in it)."""
    fee_token: str = field(kw_only=True)
    """The token of every provider fee quoted on this chain (``ChainSetup.fee_token``)."""
    state_ttl: float = 0.0
    """How long an NFT's on-chain metadata state read is reused (0: never)."""
    state_cache: dict[str, tuple[float, int]] = field(
        default_factory=dict, compare=False, repr=False)
    """NFT address -> (monotonic time read, state); see ``chain.nft.metadata_state``."""
    state_reads: dict[str, asyncio.Future[int]] = field(
        default_factory=dict, compare=False, repr=False)
    """NFT address -> the read in flight, which concurrent cache misses share."""

    @property
    def compute_address(self) -> str:
        """Who must receive compute orders: the provider's wallet on this chain."""
        return self.provider_address

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
    """All configured chains, by id, and the RPC HTTP session they share."""

    by_id: dict[int, ChainConfig]
    session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    @property
    def ids(self) -> list[int]:
        return sorted(self.by_id)

    def get(self, chain_id: int) -> ChainConfig:
        try:
            return self.by_id[chain_id]
        except KeyError:
            raise UnsupportedChainError(f"Unsupported chain id {chain_id}.") from None


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


class SessionHTTPProvider(AsyncHTTPProvider):
    """web3's HTTP provider, posting through one aiohttp session that Tidegate owns.

    web3's own session manager guards its session cache with a threading lock taken
    through an executor; a request cancelled at that moment (a client that hangs
    up, a sibling call that failed) can leave the lock held, after which every RPC
    call of the process waits forever. Posting on our session needs no lock, keeps
    connections alive, and fails fast: no web3 retries, a total timeout per call.
    """

    def __init__(self, url: str, session: aiohttp.ClientSession, rpc_timeout: float,
                 chain_id: int | None = None) -> None:
        super().__init__(url, exception_retry_configuration=None)
        self._chain_id = chain_id
        self._session = session
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=rpc_timeout)
        self._headers = self.get_request_headers()

    async def _post(self, data: bytes) -> bytes:
        async with self._session.post(self._url, data=data, headers=self._headers,
                                      timeout=self._timeout) as response:
            response.raise_for_status()
            return await response.read()

    async def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        return await self._post(request_data)

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        # web3 asks eth_chainId before every contract call (twice per call measured);
        # a configured chain's id never changes, so answer it here.
        if method == "eth_chainId" and self._chain_id is not None:
            return cast(RPCResponse, {"jsonrpc": "2.0", "id": 0, "result": hex(self._chain_id)})
        return await super().make_request(method, params)

    async def make_batch_request(
        self, batch_requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        response = self.decode_rpc_response(
            await self._post(self.encode_batch_rpc_request(batch_requests)))
        if not isinstance(response, list):
            return response
        return sorted(response, key=lambda r: int(cast(Any, r).get("id", 0)))

    async def disconnect(self) -> None:
        """The session belongs to the caller (closed with :meth:`Chains.close`)."""


def build_web3(
    url: str, rpc_timeout: float, session: aiohttp.ClientSession, chain_id: int | None = None
) -> AsyncWeb3[SessionHTTPProvider]:
    """An AsyncWeb3 for ``url`` on ``session`` that tolerates PoA chains (long extraData).

    With ``chain_id`` known, ``eth_chainId`` is answered locally.
    """
    w3 = AsyncWeb3(SessionHTTPProvider(url, session, rpc_timeout, chain_id))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


def rpc_session() -> aiohttp.ClientSession:
    """A keep-alive HTTP session for RPC calls.

    web3's default session closes the connection after every call (``force_close``),
    which costs a TCP handshake per RPC round trip.
    """
    return aiohttp.ClientSession(
        raise_for_status=True,
        connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=30),
    )


def load_addresses(address_file: Path | None) -> dict[int, dict[str, str]]:
    """Contract addresses per chain from ``ADDRESS_FILE`` or the packaged file."""
    path: Path = address_file or packaged_address_file_path()
    try:
        return load_address_file(path)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"ADDRESS_FILE cannot be read: {exc}") from exc


async def discover_chains(setup: ChainSetup, http: httpx.AsyncClient) -> Chains:
    """Build the chain table from ``setup`` (one RPC call in single-URL mode)."""
    addresses = load_addresses(setup.address_file)
    session = rpc_session()

    def config(chain_id: int, url: str) -> ChainConfig:
        key = setup.provider_key(chain_id)
        contracts = addresses.get(chain_id, {})
        return ChainConfig(
            chain_id, url, key, Account.from_key(key).address,
            build_web3(url, setup.rpc_timeout, session, chain_id), contracts,
            fee_token=setup.fee_token(chain_id, contracts), state_ttl=setup.state_ttl,
        )

    try:
        if setup.rpc_urls.is_map:
            by_id = {cid: config(cid, url) for cid, url in setup.rpc_urls.by_chain.items()}
        else:
            url = setup.rpc_urls.single
            if url is None:
                raise ConfigurationError("NETWORK_URL is required")
            cid = await rpc_chain_id(http, url, setup.rpc_timeout)
            by_id = {cid: config(cid, url)}
    except BaseException:
        await session.close()
        raise
    for chain in by_id.values():
        await warm_up(chain)
    return Chains(by_id, session)


async def warm_up(chain: ChainConfig) -> None:
    """Check the RPC answers, once, at start.

    An RPC that is down now is not fatal: requests that need it answer 503 until it
    is back.
    """
    try:
        await asyncio.wait_for(chain.web3.eth.chain_id, timeout=2)
    except Exception:  # any failure here is reported by the requests that need the RPC
        logging.getLogger(__name__).warning("chain %s: RPC not reachable at start",
                                            chain.chain_id)
