"""The command tier: use cases called directly, on real stores and the session chain.

No HTTP: each test builds what ``app.py`` would hand the command (a store, the chain,
the resolver over the store, the authenticator, the order validator, a fetcher that
may reach the chain harness's local file origin) and calls the command with a typed
command object, as any wire adapter does.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.chain_fixtures import ChainHarness
from tests.conftest import open_store
from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, sign_like_ocean_js
from tests.local_http import local_fetcher
from tidegate.assets.indexer import ChainIndexer, IndexerOptions
from tidegate.assets.orders import OrderValidator
from tidegate.assets.resolver import IndexedResolver
from tidegate.auth.request_auth import RequestAuthenticator, SignedRequest
from tidegate.auth.tokens import AuthTokens
from tidegate.chain.clients import ChainConfig, Chains
from tidegate.dev.publishing import PublishedAsset
from tidegate.files.objects import StorageContext
from tidegate.stores.base import Store
from tidegate.types import Nonce


@dataclass
class Deps:
    """What the composition root would build, for one test."""

    harness: ChainHarness
    store: Store
    chain: ChainConfig
    chains: Chains
    resolver: IndexedResolver
    authenticator: RequestAuthenticator
    orders: OrderValidator
    storage: StorageContext
    indexer: ChainIndexer

    async def publish(self, **kwargs: Any) -> PublishedAsset:
        """Publish on the chain and index it into the store (as the app's indexer)."""
        asset = self.harness.publish(**kwargs)
        self.harness.give_datatokens(asset)
        await self.indexer.sync_once()
        return asset


def signed(message: str, *, key: str = CONSUMER_KEY, signer: str = CONSUMER_ADDRESS,
           nonce: str | None = None) -> SignedRequest:
    """A request signed like ocean.js (``message + nonce``, v = 27/28)."""
    text = nonce or str(time.time_ns())
    return SignedRequest(signer=signer, message=message, nonce=Nonce.parse(text),
                         signature=sign_like_ocean_js(message + text, key))


@pytest.fixture(params=["sqlite", "postgres"])
def command_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("fresh_pg_url")
    return url


@pytest.fixture
async def deps(harness: ChainHarness, chain_config: ChainConfig,
               tmp_path: Path) -> AsyncIterator[Deps]:
    """The use cases' services on SQLite (see ``deps_on`` for both stores)."""
    async for built in _deps(harness, chain_config, f"sqlite://{tmp_path / 'store.db'}"):
        yield built


@pytest.fixture
async def deps_on(harness: ChainHarness, chain_config: ChainConfig,
                  command_store_url: str) -> AsyncIterator[Deps]:
    """The use cases' services, once on SQLite and once on PostgreSQL."""
    async for built in _deps(harness, chain_config, command_store_url):
        yield built


async def _deps(harness: ChainHarness, chain: ChainConfig, url: str) -> AsyncIterator[Deps]:
    store = open_store(url)
    await store.open()
    fetcher, client = local_fetcher()
    try:
        chains = Chains({chain.chain_id: chain})
        tokens = AuthTokens("command-tests-secret-0123456789abcdef", store)
        yield Deps(
            harness=harness, store=store, chain=chain, chains=chains,
            resolver=IndexedResolver(store),
            authenticator=RequestAuthenticator(store, tokens),
            orders=OrderValidator(pending_wait=0.5),
            storage=StorageContext(ipfs_gateway=None, arweave_gateway=None, chains=chains,
                                   fetcher=fetcher, max_checksum_length=1024 * 1024),
            indexer=ChainIndexer(chain, store, IndexerOptions()),
        )
    finally:
        await client.aclose()
        await store.close()
