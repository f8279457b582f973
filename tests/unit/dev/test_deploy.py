"""Deploying barge's contract set: what is on chain, and ``tidegate deploy-contracts``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from tests.chain_fixtures import ChainFacade, ChainHarness
from tidegate.chain.contracts import load_address_file
from tidegate.cli import main
from tidegate.dev import deploy, ocean_txs
from tidegate.dev.deploy import OceanAddresses
from tidegate.dev.ocean_txs import contract

# Every contract key of the address file, as barge's deploy script writes it for a
# development chain (the ERC20/ERC721 template maps aside).
CONTRACT_KEYS = {
    "Ocean", "MockDAI", "MockUSDC", "OPFCommunityFeeCollector", "Router", "FixedPrice",
    "Dispenser", "ERC721Factory", "veOCEAN", "veAllocate", "veDelegation",
    "veFeeDistributor", "veFeeEstimate", "SmartWalletChecker", "DFRewards", "DFStrategyV1",
    "Escrow",
}
# Contract creations by nonce: the core's 13 transactions first (their addresses are
# unchanged), then the rest, Escrow last. Nonces 9-12, 16, 23, 24 and 27 are calls.
NONCES = {
    "Ocean": 0, "OPFCommunityFeeCollector": 1, "Router": 2, "FixedPrice": 3, "Dispenser": 4,
    "ERC20Template.1": 5, "ERC20Template.2": 6, "ERC721Template.1": 7, "ERC721Factory": 8,
    "MockDAI": 13, "MockUSDC": 14, "ERC20Template.3": 15, "veOCEAN": 17, "veAllocate": 18,
    "veDelegation": 19, "veFeeDistributor": 20, "veFeeEstimate": 21,
    "SmartWalletChecker": 22, "DFRewards": 25, "DFStrategyV1": 26, "Escrow": 28,
}
TRANSACTIONS = 29


def reference_create_address(sender: str, nonce: int) -> str:
    from eth_utils import keccak
    from rlp import encode

    return to_checksum_address(keccak(encode([bytes.fromhex(sender[2:]), nonce]))[12:])


@pytest.mark.parametrize("nonce", [0, 1, 0x7F, 0x80, 0xFF, 0x100, 2**32 + 5])
def test_create_address_is_rlp_of_sender_and_nonce(nonce: int) -> None:
    sender = "0xe2DD09d719Da89e5a3D0F2549c7E24566e947260"
    assert deploy.create_address(sender, nonce) == reference_create_address(sender, nonce)


def flat(addresses: Mapping[str, Any]) -> dict[str, str]:
    """``load_address_file``'s view: template maps as ``"ERC20Template.1"``."""
    found: dict[str, str] = {}
    for key, value in addresses.items():
        if isinstance(value, dict):
            found.update({f"{key}.{sub}": address for sub, address in value.items()})
        elif isinstance(value, str):
            found[key] = value
    return found


def test_the_full_set_is_deployed_under_barge_keys(
    chain: ChainFacade, addresses: OceanAddresses
) -> None:
    w3 = chain.w3
    assert set(addresses) == CONTRACT_KEYS | {
        "ERC20Template", "ERC721Template", "chainId", "startBlock"}
    assert set(addresses["ERC20Template"]) == {"1", "2", "3"}
    assert set(addresses["ERC721Template"]) == {"1"}
    contracts = flat(addresses)
    assert set(contracts) == set(NONCES)
    assert len(set(contracts.values())) == len(contracts)  # all distinct
    for key, address in contracts.items():
        assert len(w3.eth.get_code(to_checksum_address(address))) > 100, key
        assert address == deploy.create_address(chain.accounts[0].address, NONCES[key]), key


def test_the_factory_has_three_erc20_templates(
    chain: ChainFacade, addresses: OceanAddresses
) -> None:
    factory = contract(chain.w3, "ERC721Factory", addresses["ERC721Factory"])
    assert factory.functions.getCurrentTemplateCount().call() == 3
    assert factory.functions.getCurrentNFTTemplateCount().call() == 1
    for index, template in addresses["ERC20Template"].items():
        assert factory.functions.getTokenTemplate(int(index)).call() == (template, True)
    # 3 is the predictoor template (ERC20Template3), as in barge.
    template3 = contract(chain.w3, "ERC20Template3", addresses["ERC20Template"]["3"])
    assert template3.functions.getId().call() == 3


def test_mock_tokens_have_barge_names_and_decimals(
    chain: ChainFacade, addresses: OceanAddresses, deployer: LocalAccount
) -> None:
    for key, symbol, decimals in (("MockDAI", "DAI", 18), ("MockUSDC", "USDC", 6)):
        token = contract(chain.w3, "MockERC20Decimals", addresses[key])  # type: ignore[literal-required]
        assert token.functions.name().call() == symbol
        assert token.functions.symbol().call() == symbol
        assert token.functions.decimals().call() == decimals
        assert token.functions.balanceOf(deployer.address).call() == 10**26


def test_ve_contracts_are_wired_as_the_deploy_script_does(
    chain: ChainFacade, addresses: OceanAddresses, deployer: LocalAccount
) -> None:
    w3, me = chain.w3, deployer.address
    ve_ocean = contract(w3, "veOCEAN", addresses["veOCEAN"]).functions
    assert ve_ocean.token().call() == addresses["Ocean"]
    assert (ve_ocean.name().call(), ve_ocean.symbol().call(), ve_ocean.version().call()) == (
        "veOCEAN", "veOCEAN", "0.1.0")
    assert ve_ocean.decimals().call() == 18
    assert ve_ocean.admin().call() == me
    assert ve_ocean.smart_wallet_checker().call() == addresses["SmartWalletChecker"]
    checker = contract(w3, "SmartWalletChecker", addresses["SmartWalletChecker"]).functions
    assert checker.isManager(me).call()
    assert not checker.isAllowed(addresses["DFRewards"]).call()  # no contract allowed yet

    delegation = contract(w3, "veDelegation", addresses["veDelegation"]).functions
    assert delegation.name().call() == "Voting Escrow Boost Delegation"
    assert delegation.symbol().call() == "veDelegation"
    assert delegation.admin().call() == me

    distributor = contract(w3, "veFeeDistributor", addresses["veFeeDistributor"]).functions
    assert distributor.voting_escrow().call() == addresses["veOCEAN"]
    assert distributor.token().call() == addresses["Ocean"]
    assert distributor.admin().call() == me
    assert distributor.emergency_return().call() == me
    week = 7 * 24 * 3600
    start = distributor.start_time().call()
    assert start % week == 0 and 0 <= chain.latest_timestamp() - start < week + 3600

    estimate = contract(w3, "veFeeEstimate", addresses["veFeeEstimate"]).functions
    assert estimate.voting_escrow().call() == addresses["veOCEAN"]
    assert estimate.fee_distributor().call() == addresses["veFeeDistributor"]


def test_ve_ocean_locks_ocean(
    chain: ChainFacade, txs: ocean_txs.Transactor, addresses: OceanAddresses,
    consumer: LocalAccount,
) -> None:
    """The Vyper contracts run, not only deploy: a consumer locks OCEAN for veOCEAN."""
    w3, amount = chain.w3, 10 * 10**18
    ocean_txs.approve(txs, consumer, addresses["Ocean"], addresses["veOCEAN"], amount)
    ve_ocean = contract(w3, "veOCEAN", addresses["veOCEAN"])
    unlock = chain.latest_timestamp() + 4 * 7 * 24 * 3600
    txs.send(consumer, ve_ocean.functions.create_lock(amount, unlock), gas=1_000_000)
    locked_amount, _end = ve_ocean.functions.locked(consumer.address).call()
    assert locked_amount == amount
    assert ve_ocean.functions.balanceOf(consumer.address).call() > 0
    ocean = contract(w3, "OceanToken", addresses["Ocean"])
    assert ocean.functions.balanceOf(addresses["veOCEAN"]).call() == amount


def test_df_rewards_has_the_v1_strategy(
    chain: ChainFacade, addresses: OceanAddresses, deployer: LocalAccount
) -> None:
    rewards = contract(chain.w3, "DFRewards", addresses["DFRewards"]).functions
    assert rewards.isStrategy(addresses["DFStrategyV1"]).call()
    assert rewards.live_strategies(0).call() == addresses["DFStrategyV1"]
    assert rewards.owner().call() == deployer.address
    strategy = contract(chain.w3, "DFStrategyV1", addresses["DFStrategyV1"]).functions
    assert strategy.id().call() == 1  # DFStrategyV1's id


def test_escrow_is_built_on_the_router_as_the_deploy_script_does(
    chain: ChainFacade, addresses: OceanAddresses
) -> None:
    escrow = contract(chain.w3, "Escrow", addresses["Escrow"]).functions
    assert escrow.factoryRouter().call() == addresses["Router"]
    # No collector of its own: the router's (the OPF collector) takes the OPC fee.
    assert escrow.opcCollector().call() == "0x" + "0" * 40
    router = contract(chain.w3, "FactoryRouter", addresses["Router"]).functions
    assert router.getOPCCollector().call() == addresses["OPFCommunityFeeCollector"]


def test_cli_deploys_to_a_node_and_writes_the_address_file(
    harness: ChainHarness, tmp_path: Path
) -> None:
    deployer = harness.chain.accounts[9]  # unused elsewhere: a fresh nonce
    path = tmp_path / "address.json"
    path.write_text(json.dumps({"other": {"chainId": 5}}))
    result = CliRunner().invoke(main, [
        "deploy-contracts", "--rpc", harness.rpc.url, "--key", harness.chain.private_key(9),
        "--address-file", str(path), "--network", "mydev",
    ])
    assert result.exit_code == 0, result.output
    raw = json.loads(path.read_text())
    assert list(raw) == ["other", "mydev"]
    entry = raw["mydev"]
    assert entry["chainId"] == 8996 and entry["startBlock"] > 0
    assert set(entry) == CONTRACT_KEYS | {
        "ERC20Template", "ERC721Template", "chainId", "startBlock"}
    # The contracts at their nonces, in the order described in deploy.py.
    contracts = flat(entry)
    assert {key: reference_create_address(deployer.address, nonce)
            for key, nonce in NONCES.items()} == contracts
    assert flat(load_address_file(path)[8996]) == contracts
    w3 = harness.chain.w3
    assert w3.eth.get_transaction_count(deployer.address) == TRANSACTIONS
    for key, address in contracts.items():
        assert len(w3.eth.get_code(to_checksum_address(address))) > 100, key
    router = contract(w3, "FactoryRouter", entry["Router"])
    assert router.functions.isFixedRateContract(entry["FixedPrice"]).call()
    assert router.functions.isDispenserContract(entry["Dispenser"]).call()
    factory = contract(w3, "ERC721Factory", entry["ERC721Factory"])
    assert factory.functions.getCurrentTemplateCount().call() == 3
    assert factory.functions.getTokenTemplate(3).call()[0] == entry["ERC20Template"]["3"]
    assert contract(w3, "OceanToken", entry["Ocean"]).functions.owner().call() == deployer.address
    ve_ocean = contract(w3, "veOCEAN", entry["veOCEAN"]).functions
    assert ve_ocean.token().call() == entry["Ocean"]
    assert ve_ocean.smart_wallet_checker().call() == entry["SmartWalletChecker"]
    rewards = contract(w3, "DFRewards", entry["DFRewards"]).functions
    assert rewards.isStrategy(entry["DFStrategyV1"]).call()
    usdc = contract(w3, "MockERC20Decimals", entry["MockUSDC"]).functions
    assert (usdc.symbol().call(), usdc.decimals().call()) == ("USDC", 6)
    assert json.loads(result.output[result.output.index("{"):]) == entry


def test_cli_reports_an_unreachable_node(tmp_path: Path) -> None:
    key = "0x" + "11" * 32
    result = CliRunner().invoke(main, [
        "deploy-contracts", "--rpc", "http://127.0.0.1:9", "--key", key,
        "--address-file", str(tmp_path / "a.json"),
    ])
    assert result.exit_code == 1
    assert not (tmp_path / "a.json").exists()
    result = CliRunner().invoke(main, [
        "deploy-contracts", "--rpc", "http://127.0.0.1:9", "--key", "0x12",
        "--address-file", str(tmp_path / "a.json"),
    ])
    assert result.exit_code == 2 and "not a private key" in result.output


def test_mint_ocean_by_the_owner_only(harness: ChainHarness) -> None:
    w3, ocean = harness.chain.w3, harness.addresses["Ocean"]
    owner, other = harness.chain.accounts[0], harness.chain.accounts[4]
    receipt = deploy.mint_ocean(w3, owner, ocean, other.address, 7)
    assert receipt["status"] == 1
    token = contract(w3, "OceanToken", ocean)
    assert token.functions.balanceOf(other.address).call() == 7
    with pytest.raises(deploy.DeploymentError, match=r"OceanToken\.mint\b"):
        deploy.mint_ocean(w3, other, ocean, other.address, 7)
