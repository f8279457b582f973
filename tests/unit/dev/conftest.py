"""Short names for the suite's session chain (tests/chain_fixtures.py), reverted per test."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from tests.chain_fixtures import ChainFacade, ChainHarness
from tidegate.dev.deploy import OceanAddresses
from tidegate.dev.ocean_txs import Transactor
from tidegate.dev.rpc_shim import RpcServer


@pytest.fixture
def chain(harness: ChainHarness) -> ChainFacade:
    """The session chain (DevChain, or anvil), reverted to its deployed state after the test."""
    return harness.chain


@pytest.fixture
def txs(harness: ChainHarness) -> Transactor:
    """The session chain's transaction sender."""
    return harness.txs


@pytest.fixture
def addresses(chain: ChainFacade) -> OceanAddresses:
    assert chain.addresses is not None
    return chain.addresses


@pytest.fixture
def deployer(chain: ChainFacade) -> LocalAccount:
    return chain.accounts[0]


@pytest.fixture
def publisher(chain: ChainFacade) -> LocalAccount:
    return chain.accounts[1]


@pytest.fixture
def consumer(chain: ChainFacade) -> LocalAccount:
    """Holds ``chain_fixtures.CONSUMER_OCEAN`` OCEAN."""
    return chain.accounts[2]


@pytest.fixture
def provider(chain: ChainFacade) -> LocalAccount:
    return chain.accounts[3]


@pytest.fixture
def rpc_server(session_harness: ChainHarness) -> RpcServer:
    """The DevChain's JSON-RPC shim (``devchain_only`` tests)."""
    server = session_harness.rpc
    assert isinstance(server, RpcServer), "the RPC shim serves the in-process chain only"
    return server
