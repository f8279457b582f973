"""Chain fixtures for the whole suite: one chain per session, a snapshot per test.

Imported by tests/conftest.py. The chain is the in-process ``DevChain`` (eth-tester)
behind its JSON-RPC shim, or, with ``TIDEGATE_TEST_CHAIN=anvil`` (``make test-anvil``),
an anvil node from npm (tidegate.dev.anvil_node): the same tests then run against a real
JSON-RPC node. Tests see the chain through :class:`ChainFacade`, which both satisfy.
Tests that use the chain get the ``chain`` marker; tests marked ``devchain_only``
(DevChain internals, the RPC shim) are skipped on anvil.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3

from tests.helpers import PROVIDER_KEY
from tidegate.chain.contracts import write_address_file
from tidegate.crypto import ecies
from tidegate.dev.demo_origin import serve_directory
from tidegate.dev.deploy import OceanAddresses
from tidegate.dev.devchain import DevChain
from tidegate.dev.ocean_txs import ONE_TOKEN, Transactor, mint_datatoken
from tidegate.dev.publishing import AssetDescription, PublishedAsset, publish_asset
from tidegate.dev.rpc_shim import start_rpc_server
from tidegate.settings import Settings

REPO = Path(__file__).resolve().parent.parent

ORIGIN_FILES = {
    "data.csv": b"a,b\n1,2\n3,4\n",
    "big.bin": bytes(range(256)) * 4096,  # 1 MiB
    "algo.py": b"print('hello from the algorithm')\n",
    "count.py": (b"import json, os, pathlib\n"
                 b"did = json.loads(os.environ['DIDS'])[0]\n"
                 b"data = pathlib.Path(f'/data/inputs/{did}/0').read_bytes()\n"
                 b"pathlib.Path('/data/outputs/result.txt').write_bytes(\n"
                 b"    b'lines=%d' % data.count(b'\\n'))\n"
                 b"print('counted')\n"),
    "count.js": (b"const fs = require('fs');\n"
                 b"const did = JSON.parse(process.env.DIDS)[0];\n"
                 b"const data = fs.readFileSync(`/data/inputs/${did}/0`, 'utf8');\n"
                 b"fs.writeFileSync('/data/outputs/result.txt', 'lines=' + "
                 b"(data.split('\\n').length - 1));\n"
                 b"console.log('counted in node');\n"),
}
CONSUMER_OCEAN = 1_000 * ONE_TOKEN
"""OCEAN minted to the consumer (account 2) when the session chain is set up."""
CHAIN_BACKENDS = ("devchain", "anvil")


def chain_backend() -> str:
    """``TIDEGATE_TEST_CHAIN``: ``devchain`` (eth-tester, the default) or ``anvil``."""
    backend = os.environ.get("TIDEGATE_TEST_CHAIN", "").strip().lower() or "devchain"
    if backend not in CHAIN_BACKENDS:
        raise pytest.UsageError(
            f"TIDEGATE_TEST_CHAIN={backend!r}: expected one of {', '.join(CHAIN_BACKENDS)}"
        )
    return backend


class ChainFacade(Protocol):
    """What tests use of a chain: ``DevChain`` or ``tidegate.dev.anvil_node.NodeChain``."""

    w3: Web3
    accounts: list[LocalAccount]
    addresses: OceanAddresses | None

    @property
    def chain_id(self) -> int: ...

    def private_key(self, index: int) -> HexStr: ...

    def snapshot(self) -> int: ...

    def revert(self, snapshot_id: int) -> None: ...

    def mine(self, timestamp: int | None = None) -> None: ...

    def latest_timestamp(self) -> int: ...

    def deploy_ocean_contracts(self, deployer_index: int = 0) -> OceanAddresses: ...

    def mint_ocean(self, to: str, amount_wei: int, owner_index: int = 0) -> None: ...


class RpcEndpoint(Protocol):
    """The chain's JSON-RPC server: the shim (``RpcServer``) or an ``AnvilNode``."""

    url: str


@dataclass
class ChainHarness:
    chain: ChainFacade
    rpc: RpcEndpoint
    address_file: Path
    origin: str
    txs: Transactor
    """Sends the tests' transactions over ``chain.w3`` (one per session chain)."""

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
            self.txs, self.addresses, self.publisher, description,
            provider_url=provider_url,
            provider_address=Account.from_key(PROVIDER_KEY).address,
            encrypt=self.encrypt,
        )

    def give_datatokens(self, asset: PublishedAsset, amount: int = 5 * ONE_TOKEN) -> None:
        mint_datatoken(self.txs, self.publisher, asset.datatoken_address,
                       self.consumer.address, amount)


def mark_chain_tests(items: list[pytest.Item]) -> None:
    """Mark tests that use the session chain ``chain``; skip ``devchain_only`` on anvil.

    Called from tests/conftest.py's ``pytest_collection_modifyitems``.
    """
    anvil = chain_backend() == "anvil"
    uses_chain = False
    for item in items:
        if "session_harness" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.chain)
            uses_chain = True
        if anvil and item.get_closest_marker("devchain_only"):
            item.add_marker(pytest.mark.skip(
                reason="eth-tester specific (DevChain internals or the RPC shim): "
                       "not run with TIDEGATE_TEST_CHAIN=anvil"))
    if anvil and uses_chain and _find_test_anvil() is None:
        raise pytest.UsageError(
            "TIDEGATE_TEST_CHAIN=anvil, but anvil is not installed in "
            "tools/anvil/node_modules: run `make anvil-setup`"
        )


def _find_test_anvil() -> Path | None:
    """``TIDEGATE_ANVIL``, else anvil on ``PATH``, else what ``make anvil-setup`` installs."""
    from tidegate.dev.anvil_node import find_anvil

    return find_anvil(os.environ.get("TIDEGATE_ANVIL"), roots=[REPO])


def _start_chain(stack: contextlib.ExitStack) -> tuple[ChainFacade, RpcEndpoint]:
    """A chain with the Ocean contracts deployed, and its JSON-RPC endpoint."""
    if chain_backend() == "anvil":
        from tidegate.dev.anvil_node import AnvilNode, NodeChain

        binary = _find_test_anvil()
        assert binary is not None  # checked at collection
        # Port 0: a free one; a large balance: the suites fund many wallets.
        node = stack.enter_context(AnvilNode(binary, port=0, balance_eth=1_000_000))
        anvil = NodeChain(node.url)
        anvil.deploy_ocean_contracts()
        return anvil, node
    chain = DevChain()
    chain.deploy_ocean_contracts()
    server = start_rpc_server(chain)
    stack.callback(server.close)
    return chain, server


@pytest.fixture(scope="session")
def session_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainHarness]:
    root = tmp_path_factory.mktemp("chain")
    with contextlib.ExitStack() as stack:
        chain, rpc = _start_chain(stack)
        assert chain.addresses is not None
        chain.mint_ocean(chain.accounts[2].address, CONSUMER_OCEAN)
        address_file = root / "address.json"
        write_address_file(address_file, "development", chain.chain_id, dict(chain.addresses))
        files = root / "origin"
        files.mkdir()
        for name, content in ORIGIN_FILES.items():
            (files / name).write_bytes(content)
        server, origin = serve_directory(files)
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        yield ChainHarness(chain, rpc, address_file, origin, Transactor(chain.w3))


@pytest.fixture
def harness(session_harness: ChainHarness) -> Iterator[ChainHarness]:
    """The session chain, reverted to its deployed state after the test."""
    snapshot = session_harness.chain.snapshot()
    try:
        yield session_harness
    finally:
        session_harness.chain.revert(snapshot)


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
            # Tests change NFT states and expect the next request to see it at once;
            # the reuse window itself is tested in tests/unit/chain/test_nft.py.
            "TIDEGATE_CHAIN_STATE_TTL": "0",
            # Many requests from one address; tests/api/test_rate_limit.py turns it on.
            "TIDEGATE_RATE_LIMIT": "false",
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


@pytest.fixture
async def chain_config(harness: ChainHarness) -> AsyncIterator[Any]:
    """The app's view of the dev chain: a ChainConfig with the test provider key."""
    from eth_account import Account

    from tidegate.chain.clients import ChainConfig, build_web3, rpc_session
    from tidegate.chain.contracts import load_address_file

    session = rpc_session()
    web3 = build_web3(harness.rpc.url, 10, session)
    addresses = load_address_file(harness.address_file)[8996]
    yield ChainConfig(8996, harness.rpc.url, PROVIDER_KEY,
                      Account.from_key(PROVIDER_KEY).address, web3, addresses,
                      fee_token=addresses["Ocean"])
    await session.close()


def order_asset(harness: ChainHarness, asset: PublishedAsset, *, service_index: int = 0,
                fee_key: str = PROVIDER_KEY, variant: str = "plain",
                consumer_address: str | None = None, amount: int = 0) -> str:
    """Order ``asset`` the way a client does after initialize; returns the tx hash."""
    from tidegate.dev import ocean_txs
    from tidegate.fees.provider_fees import build_provider_data, sign_provider_fee

    service = asset.ddo["services"][service_index]
    fee = sign_provider_fee(
        fee_key, provider_data=build_provider_data(None, time.time(), asset.datatoken_address,
                                                   service["id"]),
        fee_token=harness.addresses["Ocean"], fee_amount=amount, valid_until=0)
    who = consumer_address or harness.consumer.address
    txs = harness.txs
    if variant == "fixed_rate":
        return str(ocean_txs.buy_from_fre_and_order(
            txs, harness.addresses, harness.consumer, asset.datatoken_address, who,
            service_index, fee))
    if variant == "dispenser":
        return str(ocean_txs.buy_from_dispenser_and_order(
            txs, harness.addresses, harness.consumer, asset.datatoken_address, who,
            service_index, fee))
    return str(ocean_txs.start_order(txs, harness.consumer, asset.datatoken_address, who,
                                     service_index, fee))
