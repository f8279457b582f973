"""Chain fixtures for the whole suite: one dev chain per session, a snapshot per test.

Imported by tests/conftest.py. ``TIDEGATE_TEST_RPC`` (set by the anvil run of the
test command) makes the same tests use an external node instead of eth-tester.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from tests.helpers import PROVIDER_KEY
from tidegate.assets.publishing import AssetDescription, PublishedAsset, publish_asset
from tidegate.chain.contracts import write_address_file
from tidegate.chain.devchain import DevChain
from tidegate.chain.ocean_txs import ONE_TOKEN, forget_nonces, mint_datatoken
from tidegate.chain.rpc_shim import RpcServer, start_rpc_server
from tidegate.crypto import ecies
from tidegate.devmode import serve_directory
from tidegate.settings import Settings

ORIGIN_FILES = {
    "data.csv": b"a,b\n1,2\n3,4\n",
    "big.bin": bytes(range(256)) * 4096,  # 1 MiB
    "algo.py": b"print('hello from the algorithm')\n",
}


@dataclass
class ChainHarness:
    chain: DevChain
    rpc: RpcServer
    address_file: Path
    origin: str

    @property
    def addresses(self) -> dict[str, Any]:
        assert self.chain.addresses is not None
        return dict(self.chain.addresses)

    @property
    def publisher(self) -> LocalAccount:
        return self.chain.accounts[1]

    @property
    def consumer(self) -> LocalAccount:
        return self.chain.accounts[2]

    def encrypt(self, data: bytes) -> str:
        """What the provider's /encrypt answers (ECIES to the test provider key)."""
        return "0x" + ecies.encrypt(ecies.public_key_hex(PROVIDER_KEY), data).hex()

    def publish(self, files: list[dict[str, Any]] | None = None, *,
                provider_url: str = "http://tidegate", **kwargs: Any) -> PublishedAsset:
        description = AssetDescription(
            name=kwargs.pop("name", "Test asset"),
            files=files or [{"type": "url", "url": self.origin + "/data.csv"}],
            **kwargs,
        )
        from eth_account import Account

        return publish_asset(
            self.chain.w3, self.addresses, self.publisher, description,
            provider_url=provider_url,
            provider_address=Account.from_key(PROVIDER_KEY).address,
            encrypt=self.encrypt,
        )

    def give_datatokens(self, asset: PublishedAsset, amount: int = 5 * ONE_TOKEN) -> None:
        mint_datatoken(self.chain.w3, self.publisher, asset.datatoken_address,
                       self.consumer.address, amount)


@pytest.fixture(scope="session")
def session_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainHarness]:
    root = tmp_path_factory.mktemp("chain")
    chain = DevChain()
    addresses = chain.deploy_ocean_contracts()
    chain.mint_ocean(chain.accounts[2].address, 1000 * ONE_TOKEN)
    rpc = start_rpc_server(chain)
    address_file = root / "address.json"
    write_address_file(address_file, "development", chain.chain_id, dict(addresses))
    files = root / "origin"
    files.mkdir()
    for name, content in ORIGIN_FILES.items():
        (files / name).write_bytes(content)
    server, origin = serve_directory(files)
    try:
        yield ChainHarness(chain, rpc, address_file, origin)
    finally:
        server.shutdown()
        server.server_close()
        rpc.close()


@pytest.fixture
def harness(session_harness: ChainHarness) -> Iterator[ChainHarness]:
    """The session chain, reverted to its deployed state after the test."""
    snapshot = session_harness.chain.snapshot()
    try:
        yield session_harness
    finally:
        session_harness.chain.revert(snapshot)
        forget_nonces()


@pytest.fixture
def chain_settings(harness: ChainHarness, tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: str) -> Settings:
        env = {
            "PROVIDER_PRIVATE_KEY": PROVIDER_KEY,
            "NETWORK_URL": harness.rpc.url,
            "ADDRESS_FILE": str(harness.address_file),
            "TIDEGATE_DATA_DIR": str(tmp_path),
            "TIDEGATE_ALLOW_PRIVATE_URLS": "true",
            "TIDEGATE_ACCESS_LOG": "false",
            "TIDEGATE_INDEXER_POLL_INTERVAL": "0.05",
        }
        env.update(overrides)
        return Settings.from_env(env)

    return build


@pytest.fixture
async def chain_client(
    chain_settings: Callable[..., Settings],
) -> AsyncIterator[httpx.AsyncClient]:
    from tests.conftest import start_app

    async for client in start_app(chain_settings()):
        yield client


async def wait_for_ddo(client: httpx.AsyncClient, did: str, wait: float = 10.0,
                       tx: str | None = None) -> dict[str, Any]:
    """Poll the Aquarius-compatible API until the DDO (at ``tx``, if given) is indexed."""
    import asyncio

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        r = await client.get(f"/api/aquarius/assets/ddo/{did}")
        if r.status_code == 200:
            ddo: dict[str, Any] = r.json()
            if tx is None or ddo.get("event", {}).get("tx") == tx:
                return ddo
        await asyncio.sleep(0.05)
    raise AssertionError(f"{did} was not indexed: {json.dumps(r.json())[:200]}")
