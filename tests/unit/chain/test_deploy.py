"""Deploying the Ocean contracts over JSON-RPC: ``tidegate deploy-contracts``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_utils import to_checksum_address

from tests.chain_fixtures import ChainHarness
from tidegate.chain import deploy
from tidegate.chain.contracts import load_address_file
from tidegate.chain.ocean_txs import contract
from tidegate.cli import main


def create_address(sender: str, nonce: int) -> str:
    from eth_utils import keccak
    from rlp import encode

    return to_checksum_address(keccak(encode([bytes.fromhex(sender[2:]), nonce]))[12:])


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
    # Nine contracts from nonces 0..8, in the deploy script's order.
    order = ["Ocean", "OPFCommunityFeeCollector", "Router", "FixedPrice", "Dispenser"]
    for nonce, key in enumerate(order):
        assert entry[key] == create_address(deployer.address, nonce), key
    assert entry["ERC20Template"] == {"1": create_address(deployer.address, 5),
                                      "2": create_address(deployer.address, 6)}
    assert entry["ERC721Factory"] == create_address(deployer.address, 8)
    assert load_address_file(path)[8996]["ERC721Template.1"] == create_address(deployer.address, 7)
    w3 = harness.chain.w3
    router = contract(w3, "FactoryRouter", entry["Router"])
    assert router.functions.isFixedRateContract(entry["FixedPrice"]).call()
    assert router.functions.isDispenserContract(entry["Dispenser"]).call()
    factory = contract(w3, "ERC721Factory", entry["ERC721Factory"])
    assert factory.functions.getTokenTemplate(2).call()[0] == entry["ERC20Template"]["2"]
    assert contract(w3, "OceanToken", entry["Ocean"]).functions.owner().call() == deployer.address
    assert json.loads(result.output[result.output.index("{"):])["Router"] == entry["Router"]


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
