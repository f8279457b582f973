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
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, cast

from eth_account.signers.local import LocalAccount

from tidegate.assets.ddo import did_for
from tidegate.dev.ocean_txs import (
    ONE_TOKEN,
    Transactor,
    create_asset_tokens,
    mint_datatoken,
    set_metadata,
)

Pricing = Literal["plain", "fixed_rate", "dispenser"]
Encryptor = Callable[[bytes], str]
"""Sends bytes to a provider's ``/encrypt`` and returns its ``0x`` hex answer."""

TOKEN_DECIMALS: Final = 18

#: The keys of a description file: key -> (default, meaning). The one source of the
#: ``tidegate publish --help`` text; docs/publishing.md lists the same table.
DESCRIPTION_KEYS: Final[dict[str, tuple[str, str]]] = {
    "name": ("required", "the asset's name (the data NFT's name is its first 40 characters)"),
    "files": ("required", "non-empty list of file objects (url, ipfs, arweave, graphql, "
                          "smartcontract), encrypted by the provider"),
    "description": ('"Published with Tidegate"', "text"),
    "author": ('"Tidegate"', "text"),
    "license": ('"CC0-1.0"', "text"),
    "type": ('"dataset"', '"dataset" or "algorithm"'),
    "tags": ("[]", "list of strings"),
    "pricing": ('"plain"', '"plain" (the publisher mints datatokens: --mint), "fixed_rate" '
                           '(an exchange sells them for rate OCEAN each) or "dispenser" (free)'),
    "rate": ("required with fixed_rate", "OCEAN per datatoken, a positive number or decimal "
                                         "string (at most 18 decimals); only with fixed_rate"),
    "services": ('["access"]', '"access" and/or "compute" (one datatoken for both)'),
    "timeout": ("86400", "seconds an order stays valid, an integer >= 0 (0: forever)"),
    "algorithm": ("python 3.11, entrypoint python $ALGO",
                  "metadata.algorithm object (language, version, container); only with "
                  'type "algorithm"'),
    "compute": ("no raw algorithm, network allowed, no trusted algorithm",
                "the compute service's compute object; only with the compute service"),
    "credentials": ('{"allow": [], "deny": []}', "the DDO's credentials object"),
}


class DescriptionError(ValueError):
    """A description file that cannot be published; ``problems`` names each key at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def token_amount(value: object, what: str) -> int:
    """Base units (18 decimals) of a positive token amount given as a number or text.

    Exact: ``"2.5"`` is 2.5 * 10**18; more than 18 decimals, zero, a negative number, a
    boolean or anything but a number or numeric text raise ValueError naming ``what``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} must be a positive number (or a decimal string)")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{what} must be a positive number, not {str(value)[:40]!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"{what} must be a positive number, not {str(value)[:40]!r}")
    units = amount.scaleb(TOKEN_DECIMALS)
    if units != units.to_integral_value():
        raise ValueError(f"{what} has more than {TOKEN_DECIMALS} decimals")
    return int(units)


def _text(raw: Mapping[str, Any], key: str, problems: list[str]) -> str:
    value = raw.get(key, DESCRIPTION_KEYS[key][0].strip('"'))
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{key} must be a non-empty string")
        return ""
    return value


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
    def from_json(cls, raw: object) -> AssetDescription:
        """Parse a description file (the keys of :data:`DESCRIPTION_KEYS`).

        Strict: an unknown key, a value of the wrong type, ``rate`` missing with
        ``fixed_rate`` (or given with another pricing), ``algorithm`` without type
        ``algorithm`` or ``compute`` without the compute service raise
        :class:`DescriptionError` listing every problem.
        """
        if not isinstance(raw, Mapping):
            raise DescriptionError(["the description must be a JSON object"])
        problems: list[str] = []
        unknown = [key for key in raw if key not in DESCRIPTION_KEYS]
        if unknown:
            problems.append(f"unknown key{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(repr(str(k)[:40]) for k in unknown)} "
                            f"(allowed: {', '.join(DESCRIPTION_KEYS)})")
        name = _text(raw, "name", problems) if "name" in raw else ""
        if "name" not in raw:
            problems.append("name is required")
        files = raw.get("files")
        if not isinstance(files, list) or not files or not all(isinstance(f, dict)
                                                               for f in files):
            problems.append("files must be a non-empty list of file objects")
            files = []
        texts = {key: _text(raw, key, problems) for key in ("description", "author", "license")}
        kind = raw.get("type", "dataset")
        if kind not in ("dataset", "algorithm"):
            problems.append('type must be "dataset" or "algorithm"')
        tags = raw.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            problems.append("tags must be a list of strings")
            tags = []
        pricing = raw.get("pricing", "plain")
        if pricing not in ("plain", "fixed_rate", "dispenser"):
            problems.append('pricing must be "plain", "fixed_rate" or "dispenser"')
        rate = ONE_TOKEN
        if pricing == "fixed_rate":
            if "rate" not in raw:
                problems.append("rate is required with pricing fixed_rate (OCEAN per datatoken)")
            else:
                try:
                    rate = token_amount(raw["rate"], "rate")
                except ValueError as exc:
                    problems.append(str(exc))
        elif "rate" in raw:
            problems.append("rate applies only to pricing fixed_rate")
        services = raw.get("services", ["access"])
        if (not isinstance(services, list) or not services
                or not all(s in ("access", "compute") for s in services)
                or len(set(services)) != len(services)):
            problems.append('services must list "access" and/or "compute", each once')
            services = ["access"]
        timeout = raw.get("timeout", 86400)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            problems.append("timeout must be an integer number of seconds >= 0")
            timeout = 0
        objects: dict[str, Mapping[str, Any] | None] = {}
        for key in ("algorithm", "compute", "credentials"):
            value = raw.get(key)
            if value is not None and not isinstance(value, Mapping):
                problems.append(f"{key} must be a JSON object")
                value = None
            objects[key] = value
        if objects["algorithm"] is not None and kind != "algorithm":
            problems.append('algorithm applies only to type "algorithm"')
        if objects["compute"] is not None and "compute" not in services:
            problems.append('compute applies only with the "compute" service')
        if problems:
            raise DescriptionError(problems)
        return cls(
            name=name, files=files, description=texts["description"],
            author=texts["author"], license=texts["license"],
            type="algorithm" if kind == "algorithm" else "dataset", tags=list(tags),
            pricing=cast(Pricing, pricing), rate=rate, services=tuple(services),
            timeout=timeout, algorithm=objects["algorithm"], compute=objects["compute"],
            credentials=objects["credentials"],
        )


@dataclass(frozen=True)
class PublishedAsset:
    """Every id of a publication (addresses EIP-55, hashes ``0x`` hex).

    ``exchange_id``/``exchange`` for fixed-rate pricing, ``dispenser`` for dispenser
    pricing; ``mint_tx`` and ``minted`` (base units) when datatokens were minted.
    """

    did: str
    nft_address: str
    datatoken_address: str
    metadata_tx: str
    ddo: dict[str, Any]
    chain_id: int = 0
    create_tx: str = ""
    pricing: Pricing = "plain"
    exchange_id: str | None = None
    exchange: str | None = None
    dispenser: str | None = None
    mint_tx: str | None = None
    minted: int = 0


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
    mint: int = 0,
) -> PublishedAsset:
    """Create the NFT and datatoken, encrypt files and DDO, and ``setMetaData``.

    ``mint`` base units of the datatoken are then minted to the publisher (any pricing:
    the publisher is the datatoken's minter).
    """
    created = create_asset_tokens(
        txs, addresses, publisher, description.pricing,
        name=description.name[:40], symbol="TG-NFT", rate=description.rate,
    )
    nft, datatoken = created.nft, created.datatoken
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
    mint_tx = (str(mint_datatoken(txs, publisher, datatoken, publisher.address, mint))
               if mint > 0 else None)
    return PublishedAsset(did=str(ddo["id"]), nft_address=nft, datatoken_address=datatoken,
                          metadata_tx=str(tx), ddo=ddo, chain_id=int(ddo["chainId"]),
                          create_tx=created.tx, pricing=description.pricing,
                          exchange_id=created.exchange_id, exchange=created.exchange,
                          dispenser=created.dispenser, mint_tx=mint_tx,
                          minted=mint if mint_tx else 0)
