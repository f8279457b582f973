"""One dev chain per session with the Ocean contracts deployed; a snapshot per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount

from tidegate.chain.devchain import DevChain, OceanAddresses
from tidegate.chain.ocean_txs import forget_nonces
from tidegate.chain.rpc_shim import RpcServer, start_rpc_server

CONSUMER_OCEAN = 1_000 * 10**18


@pytest.fixture(scope="session")
def session_chain() -> DevChain:
    chain = DevChain()
    chain.deploy_ocean_contracts()
    chain.mint_ocean(chain.accounts[2].address, CONSUMER_OCEAN)
    return chain


@pytest.fixture
def chain(session_chain: DevChain) -> Iterator[DevChain]:
    """The session chain, reverted to its deployed state after the test."""
    snapshot = session_chain.snapshot()
    try:
        yield session_chain
    finally:
        session_chain.revert(snapshot)
        forget_nonces()


@pytest.fixture
def addresses(chain: DevChain) -> OceanAddresses:
    assert chain.addresses is not None
    return chain.addresses


@pytest.fixture
def deployer(chain: DevChain) -> LocalAccount:
    return chain.accounts[0]


@pytest.fixture
def publisher(chain: DevChain) -> LocalAccount:
    return chain.accounts[1]


@pytest.fixture
def consumer(chain: DevChain) -> LocalAccount:
    """Holds CONSUMER_OCEAN OCEAN."""
    return chain.accounts[2]


@pytest.fixture
def provider(chain: DevChain) -> LocalAccount:
    return chain.accounts[3]


@pytest.fixture(scope="session")
def rpc_server(session_chain: DevChain) -> Iterator[RpcServer]:
    server = start_rpc_server(session_chain)
    try:
        yield server
    finally:
        server.close()
