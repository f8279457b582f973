"""Publish an asset: data NFT + datatoken, encrypted files, v4 DDO, ``setMetaData``.

Works against any chain (a :class:`~tidegate.dev.ocean_txs.Transactor` over a
synchronous ``Web3`` on the dev chain's shim, anvil, or a real network) and any
provider: files and the DDO are encrypted by the provider's own ``/encrypt`` endpoint,
exactly as ocean.py does, so only that provider can decrypt them. The DDO is
LZMA-compressed then encrypted (flags 3) and its sha256 (of the plain compact JSON)
goes on chain.
"""

from __future__ import annotations

import hashlib
import json
import lzma
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from eth_account.signers.local import LocalAccount

from tidegate.assets.ddo import did_for
from tidegate.dev.ocean_txs import (
    ONE_TOKEN,
    Transactor,
    create_data_nft_with_datatoken,
    set_metadata,
)

Pricing = Literal["plain", "fixed_rate", "dispenser"]
Encryptor = Callable[[bytes], str]
"""Sends bytes to a provider's ``/encrypt`` and returns its ``0x`` hex answer."""


@dataclass(frozen=True)
class AssetDescription:
    """What a publisher describes; everything else is derived."""

    name: str
    files: list[dict[str, Any]]
    description: str = "Published with Tidegate"
    author: str = "Tidegate"
    license: str = "CC0-1.0"
    type: Literal["dataset", "algorithm"] = "dataset"
    tags: list[str] = field(default_factory=list)
    pricing: Pricing = "plain"
    rate: int = ONE_TOKEN
    services: tuple[str, ...] = ("access",)
    timeout: int = 86400
    algorithm: Mapping[str, Any] | None = None
    compute: Mapping[str, Any] | None = None
    credentials: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AssetDescription:
        """Parse a description file (see docs/publishing.md); ValueError if invalid."""
        if not isinstance(raw.get("name"), str) or not raw["name"]:
            raise ValueError("name is required")
        files = raw.get("files")
        if not isinstance(files, list) or not files or not all(isinstance(f, dict)
                                                               for f in files):
            raise ValueError("files must be a non-empty list of file objects")
        pricing = raw.get("pricing", "plain")
        if pricing not in ("plain", "fixed_rate", "dispenser"):
            raise ValueError("pricing must be plain, fixed_rate or dispenser")
        services = tuple(raw.get("services", ["access"]))
        if not services or not set(services) <= {"access", "compute"}:
            raise ValueError("services must list access and/or compute")
        rate = raw.get("rate", "1")
        return cls(
            name=raw["name"], files=files,
            description=str(raw.get("description", cls.description)),
            author=str(raw.get("author", cls.author)),
            license=str(raw.get("license", cls.license)),
            type="algorithm" if raw.get("type") == "algorithm" else "dataset",
            tags=[str(t) for t in raw.get("tags", [])],
            pricing=pricing, rate=int(float(rate) * ONE_TOKEN),
            services=services, timeout=int(raw.get("timeout", 86400)),
            algorithm=raw.get("algorithm"), compute=raw.get("compute"),
            credentials=raw.get("credentials"),
        )


@dataclass(frozen=True)
class PublishedAsset:
    did: str
    nft_address: str
    datatoken_address: str
    metadata_tx: str
    ddo: dict[str, Any]


def compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def build_ddo(
    description: AssetDescription, *, nft: str, datatoken: str, chain_id: int,
    provider_url: str, encrypted_files: str, now: datetime | None = None,
) -> dict[str, Any]:
    """A valid v4.1.0 DDO for a freshly created NFT and datatoken."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata: dict[str, Any] = {
        "created": stamp, "updated": stamp, "type": description.type,
        "name": description.name, "description": description.description,
        "author": description.author, "license": description.license,
        "tags": description.tags,
    }
    if description.type == "algorithm":
        metadata["algorithm"] = dict(description.algorithm or {
            "language": "python", "version": "0.1",
            "container": {"entrypoint": "python $ALGO", "image": "python",
                          "tag": "3.11", "checksum": "sha256:" + "0" * 64},
        })
    services: list[dict[str, Any]] = []
    for index, kind in enumerate(description.services):
        service: dict[str, Any] = {
            "id": str(index), "type": kind, "files": encrypted_files,
            "datatokenAddress": datatoken, "serviceEndpoint": provider_url,
            "timeout": description.timeout,
        }
        if kind == "compute":
            service["compute"] = dict(description.compute or {
                "allowRawAlgorithm": False, "allowNetworkAccess": True,
                "publisherTrustedAlgorithmPublishers": [], "publisherTrustedAlgorithms": [],
            })
        services.append(service)
    return {
        "@context": ["https://w3id.org/did/v1"],
        "id": did_for(nft, chain_id),
        "version": "4.1.0",
        "chainId": chain_id,
        "nftAddress": nft,
        "metadata": metadata,
        "services": services,
        "credentials": dict(description.credentials or {"allow": [], "deny": []}),
    }


def publish_asset(
    txs: Transactor,
    addresses: Mapping[str, object],
    publisher: LocalAccount,
    description: AssetDescription,
    *,
    provider_url: str,
    provider_address: str,
    encrypt: Encryptor,
) -> PublishedAsset:
    """Create the NFT and datatoken, encrypt files and DDO, and ``setMetaData``."""
    nft, datatoken = create_data_nft_with_datatoken(
        txs, addresses, publisher, description.pricing,
        name=description.name[:40], symbol="TG-NFT", rate=description.rate,
    )
    files_object = {"datatokenAddress": datatoken, "nftAddress": nft,
                    "files": description.files}
    encrypted_files = encrypt(compact_json(files_object))
    ddo = build_ddo(description, nft=nft, datatoken=datatoken,
                    chain_id=int(txs.w3.eth.chain_id), provider_url=provider_url,
                    encrypted_files=encrypted_files)
    plain = compact_json(ddo)
    document = bytes.fromhex(encrypt(lzma.compress(plain)).removeprefix("0x"))
    tx = set_metadata(txs, publisher, nft, 0, provider_url, provider_address, bytes([3]),
                      document, hashlib.sha256(plain).digest())
    return PublishedAsset(did=str(ddo["id"]), nft_address=nft, datatoken_address=datatoken,
                          metadata_tx=str(tx), ddo=ddo)
