"""What ``tidegate dev --data-dir`` keeps, and whether the chain and the index belong together.

``dev-chain.json`` (the manifest) records the chain's fingerprint (chain id and genesis
hash) and the deployment; an index next to a different or lost chain is refused with a
:class:`DevModeError` that says what to do.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from tidegate.dev.barge import DEV_CHAIN_ID
from tidegate.settings import Settings
from tidegate.stores.factory import build_store

STATE_FILE = "chain-state.json"
MANIFEST_FILE = "dev-chain.json"
ADDRESS_FILE = "address.json"
_METADATA_CURSOR = f"metadata:{DEV_CHAIN_ID}"  # the indexer's cursor (assets/indexer.py)


class DevModeError(RuntimeError):
    """``tidegate dev`` cannot start as asked; the message says why and what to do."""


@dataclass(frozen=True)
class IndexState:
    cursor: int | None
    documents: int

    @property
    def empty(self) -> bool:
        return self.cursor is None and self.documents == 0


def index_state(settings: Settings) -> IndexState:
    """What the store (the index) already holds, read through the store's own API."""

    async def read() -> IndexState:
        store = build_store(settings.database_url, settings.sqlite_path)
        await store.open()
        try:
            return IndexState(await store.get_cursor(_METADATA_CURSOR),
                               len(await store.list_ddos()))
        finally:
            await store.close()

    return asyncio.run(read())


def _index_location(settings: Settings) -> str:
    url = None if settings.database_url is None else settings.database_url.get_secret_value()
    if url is None:
        return str(settings.sqlite_path)
    return url.removeprefix("sqlite://") if url.startswith("sqlite://") else "TIDEGATE_DATABASE_URL"


def refusal(reason: str, directory: Path, settings: Settings) -> DevModeError:
    return DevModeError(
        f"{reason}. The index ({_index_location(settings)}) would list assets that do not "
        f"exist on the chain. Use another --data-dir, or run again with --fresh to discard "
        f"the chain state and the index in {directory}."
    )


def _sqlite_files(settings: Settings) -> list[Path]:
    url = None if settings.database_url is None else settings.database_url.get_secret_value()
    if url is None:
        db = settings.sqlite_path
    elif url.startswith("sqlite://"):
        db = Path(url.removeprefix("sqlite://"))
    else:
        raise DevModeError(
            "--fresh cannot reset the database named by TIDEGATE_DATABASE_URL: empty it "
            "yourself, or unset TIDEGATE_DATABASE_URL to keep the index in --data-dir"
        )
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def forget(directory: Path, settings: Settings) -> None:
    """``--fresh``: remove the chain state, the deployment record and the index."""
    doomed = [directory / STATE_FILE, directory / MANIFEST_FILE, directory / ADDRESS_FILE,
              *_sqlite_files(settings)]
    for path in doomed:
        path.unlink(missing_ok=True)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DevModeError(f"{path} is unreadable ({exc}): remove it or use --fresh") from exc
    return value if isinstance(value, dict) else None


def write_json(path: Path, value: Mapping[str, Any]) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


def chain_fingerprint(w3: Web3) -> dict[str, Any]:
    genesis = w3.eth.get_block(0)
    return {"chainId": int(w3.eth.chain_id), "genesisHash": genesis["hash"].to_0x_hex()}


def has_code(w3: Web3, address: object) -> bool:
    if not isinstance(address, str) or not Web3.is_address(address):
        return False
    return len(w3.eth.get_code(Web3.to_checksum_address(address))) > 0
