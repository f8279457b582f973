"""Ocean contract ABIs, bytecode and address files.

ABIs and bytecode come from the ``ocean-contracts`` PyPI package, which installs a
generic top-level ``artifacts`` package of Hardhat artifacts (complete bytecode, no
libraries to link). Address files use the barge layout::

    {"development": {"chainId": 8996, "Ocean": "0x..", "ERC20Template": {"1": "0x.."}, ...}}

Nothing here touches the network.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from eth_typing import ABI
from eth_utils import to_checksum_address

_ARTIFACT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class Artifact:
    """One compiled contract: its ABI and its creation bytecode (``0x`` hex)."""

    name: str
    abi: ABI
    bytecode: str


def artifacts_dir() -> Path:
    """The directory of the installed ``ocean-contracts`` artifacts.

    Raises ``RuntimeError`` when the package is not installed.
    """
    spec = importlib.util.find_spec("artifacts")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the ocean-contracts package (top-level 'artifacts') is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def load_artifact(name: str) -> Artifact:
    """Load the artifact ``<name>.json`` (for example ``"ERC20Template"``).

    Raises ``ValueError`` for a name that is not a plain contract name, or that has no
    artifact, or whose artifact lacks ``abi``/``bytecode``. Results are cached: callers
    must not mutate the returned ABI.
    """
    if not _ARTIFACT_NAME.fullmatch(name):
        # Refuse anything that could walk out of the artifacts directory.
        raise ValueError(f"invalid contract name {name!r}")
    path = artifacts_dir() / f"{name}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no ocean-contracts artifact named {name!r}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"artifact {name!r} is not valid JSON: {exc}") from exc
    abi = raw.get("abi") if isinstance(raw, dict) else None
    bytecode = raw.get("bytecode") if isinstance(raw, dict) else None
    if not isinstance(abi, list) or not isinstance(bytecode, str):
        raise ValueError(f"artifact {name!r} has no abi list or bytecode string")
    if not bytecode.startswith("0x"):
        bytecode = "0x" + bytecode
    return Artifact(name=name, abi=cast(ABI, tuple(abi)), bytecode=bytecode)


def packaged_address_file_path() -> Path:
    """The ``addresses/address.json`` shipped with ``ocean-contracts`` (public networks only)."""
    spec = importlib.util.find_spec("addresses")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "address.json"
        if candidate.is_file():
            return candidate
    # The two top-level packages are installed side by side.
    candidate = artifacts_dir().parent / "addresses" / "address.json"
    if not candidate.is_file():
        raise RuntimeError("the ocean-contracts address.json file is not installed")
    return candidate


def _checked_address(value: str, where: str) -> str:
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"{where}: {value!r} is not an address")
    return to_checksum_address(value)


def _parse_network(network: str, entry: object) -> tuple[int, dict[str, str]]:
    if not isinstance(entry, dict):
        raise ValueError(f"address file: network {network!r} is not an object")
    chain_id = entry.get("chainId")
    # bool is an int subclass; a JSON true is not a chain id.
    if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id <= 0:
        raise ValueError(f"address file: network {network!r} has no valid integer chainId")
    contracts: dict[str, str] = {}
    for key, value in entry.items():
        where = f"address file: {network}.{key}"
        if isinstance(value, str):
            contracts[key] = _checked_address(value, where)
        elif isinstance(value, dict):
            # Versioned templates ({"1": addr, "2": addr}) are flattened to "Name.1".
            for sub, address in value.items():
                if not isinstance(address, str):
                    raise ValueError(f"{where}.{sub}: expected an address string")
                contracts[f"{key}.{sub}"] = _checked_address(address, f"{where}.{sub}")
        # Other shapes (chainId, startBlock, lists of addresses) are not single contracts.
    return chain_id, contracts


def load_address_file(path: str | os.PathLike[str]) -> dict[int, dict[str, str]]:
    """Read a barge-layout address file: chain id -> contract name -> EIP-55 address.

    Template maps such as ``"ERC20Template": {"1": a, "2": b}`` appear as
    ``"ERC20Template.1"`` and ``"ERC20Template.2"``. Integer fields (``chainId``,
    ``startBlock``) and lists are left out. Raises ``ValueError`` when the file is not
    JSON, is not an object of network objects, a network lacks an integer ``chainId``,
    two networks share a chain id, or a string value is not an address.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"address file {os.fspath(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"address file {os.fspath(path)!r}: top level must be an object")
    result: dict[int, dict[str, str]] = {}
    for network, entry in raw.items():
        chain_id, contracts = _parse_network(network, entry)
        if chain_id in result:
            raise ValueError(f"address file: chainId {chain_id} appears in two networks")
        result[chain_id] = contracts
    return result


def write_address_file(
    path: str | os.PathLike[str],
    network_name: str,
    chain_id: int,
    addresses: Mapping[str, Any],
) -> None:
    """Write ``addresses`` as network ``network_name`` into a barge-layout file.

    Other networks already in the file are kept; an existing entry with the same name
    or the same chain id is replaced (one chain id must map to one network).
    ``chainId`` in the entry is always ``chain_id``. The file is replaced atomically.
    Raises ``ValueError`` if the existing file is malformed.
    """
    target = Path(path)
    existing: dict[str, Any] = {}
    if target.exists():
        load_address_file(target)  # validates the whole file before we touch it
        existing = json.loads(target.read_text(encoding="utf-8"))
    kept = {
        name: entry
        for name, entry in existing.items()
        if name != network_name and entry.get("chainId") != chain_id
    }
    entry = {key: value for key, value in addresses.items() if key != "chainId"}
    kept[network_name] = {"chainId": chain_id, **entry}
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(kept, handle, indent=2)
            handle.write("\n")
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
