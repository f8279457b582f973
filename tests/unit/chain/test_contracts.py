"""Artifacts and barge-layout address files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tidegate.chain.contracts import (
    load_address_file,
    load_artifact,
    packaged_address_file_path,
    write_address_file,
)

OCEAN = "0x2473f4F7bf40ed9310838edFCA6262C17A59DF64"
FACTORY = "0x9C2a015129969c98E9A5BcBEb61A5F907FF5b629"
TEMPLATE = "0xBb0911124E680D65358Ac46C5404D4dF01F03e80"


def test_load_artifact_has_abi_and_full_bytecode() -> None:
    artifact = load_artifact("ERC20Template")
    names = {entry.get("name") for entry in artifact.abi}
    assert {"startOrder", "reuseOrder", "OrderStarted", "ProviderFee"} <= names
    assert artifact.bytecode.startswith("0x60")
    assert "__$" not in artifact.bytecode  # nothing left to link
    assert load_artifact("ERC20Template") is artifact  # cached


@pytest.mark.parametrize(
    "name", ["../addresses/address", "ERC20Template.json", "", "NoSuchContract"]
)
def test_load_artifact_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        load_artifact(name)


def test_packaged_address_file_loads_and_flattens_templates() -> None:
    networks = load_address_file(packaged_address_file_path())
    assert 8996 not in networks  # the package has no development entry
    sepolia = networks[11155111]
    assert sepolia["Ocean"] == "0x1B083D8584dd3e6Ff37d04a6e7e82b5F622f3985"
    assert sepolia["ERC20Template.2"] == "0xDEfD0018969cd2d4E648209F876ADe184815f038"
    assert "startBlock" not in sepolia and "chainId" not in sepolia


def test_address_file_round_trip_merges_networks(tmp_path: Path) -> None:
    path = tmp_path / "address.json"
    path.write_text(json.dumps({"other": {"chainId": 5, "Ocean": OCEAN.lower()}}))
    deployed = {
        "Ocean": OCEAN,
        "ERC721Factory": FACTORY,
        "ERC20Template": {"1": TEMPLATE},
        "chainId": 8996,
        "startBlock": 1,
    }
    write_address_file(path, "development", 8996, deployed)
    raw = json.loads(path.read_text())
    assert list(raw) == ["other", "development"]
    assert next(iter(raw["development"])) == "chainId"  # barge puts it first
    assert raw["development"]["startBlock"] == 1
    networks = load_address_file(path)
    assert networks[8996] == {
        "Ocean": OCEAN,
        "ERC721Factory": FACTORY,
        "ERC20Template.1": TEMPLATE,
    }
    assert networks[5] == {"Ocean": OCEAN}  # kept, and checksummed on load


def test_write_replaces_an_entry_with_the_same_chain_id(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "address.json"
    write_address_file(path, "barge", 8996, {"Ocean": FACTORY})
    write_address_file(path, "development", 8996, {"Ocean": OCEAN})
    assert list(json.loads(path.read_text())) == ["development"]
    assert load_address_file(path)[8996]["Ocean"] == OCEAN


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "top level must be an object"),
        ('{"dev": []}', "is not an object"),
        (json.dumps({"dev": {"Ocean": OCEAN}}), "chainId"),
        ('{"dev": {"chainId": "8996"}}', "chainId"),
        ('{"dev": {"chainId": true}}', "chainId"),
        ('{"dev": {"chainId": 8996, "Ocean": "0x1234"}}', "not an address"),
        ('{"dev": {"chainId": 8996, "ERC20Template": {"1": 7}}}', "address string"),
        ('{"a": {"chainId": 1}, "b": {"chainId": 1}}', "two networks"),
    ],
)
def test_malformed_address_files_raise(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "address.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_address_file(path)


def test_write_refuses_to_merge_into_a_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "address.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError):
        write_address_file(path, "development", 8996, {"Ocean": OCEAN})
    assert path.read_text() == "[1, 2]"
