"""DDO accessors (v4 and v5): the fields a provider reads, validated where it reads them.

DDOs are kept as the JSON dictionaries published on chain (plus the indexer's
``nft``/``event``/``purgatory`` extras, or ``indexedMetadata``) so that nothing a
publisher wrote is lost; :class:`Asset` and :class:`Service` give typed access and raise
a clear 400 when a field Tidegate needs is missing or malformed. A 5.x DDO keeps those
fields in ``credentialSubject`` (:mod:`tidegate.assets.versions`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tidegate.assets.versions import V4_DID_PREFIX, Layout, layout, subject
from tidegate.errors import BadRequestError
from tidegate.types import checksum_address, is_address

METADATA_REQUIRED: Final = ("created", "updated", "type", "name", "description", "author",
                             "license")
"""Keys ``metadata`` must have (DDO v4), checked by ``ddo/validate``."""
SERVICE_REQUIRED: Final = ("id", "type", "files", "datatokenAddress", "serviceEndpoint",
                           "timeout")
"""Keys every service must have (DDO v4). ``ddo/validate`` requires them all."""
SERVICE_DEFAULTS: Final = {"timeout": 0}
"""Required keys a *reader* tolerates missing, with the value assumed: a DDO already on
chain that omits them is still served (0 = orders never expire), as the reference."""


class MalformedAssetError(BadRequestError):
    code = "asset_malformed"


def did_for(nft_address: str, chain_id: int, prefix: str = V4_DID_PREFIX) -> str:
    """``did:op:`` + sha256(checksum NFT address + chain id), as every client computes it
    (``did:ope:`` with the same digest for a 5.x DDO: ``prefix``)."""
    seed = checksum_address(nft_address) + str(chain_id)
    return prefix + hashlib.sha256(seed.encode("utf-8")).hexdigest()


def indexed_nft(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """What the indexer recorded of the data NFT: ``indexedMetadata.nft`` for the layouts
    it writes Ocean Node's fields for, Aquarius' ``nft`` for classic DDOs (a classic
    document's own ``indexedMetadata``, if a publisher wrote one, is not the indexer's)."""
    holder = raw.get("indexedMetadata") if layout(raw).indexed_metadata else raw
    nft = holder.get("nft") if isinstance(holder, Mapping) else None
    if not isinstance(nft, Mapping) and layout(raw) is Layout.V4_INDEXED:
        nft = raw.get("nft")
    return nft if isinstance(nft, Mapping) else {}


@dataclass(frozen=True)
class Service:
    """One entry of ``services``; ``index`` is its position (the order's serviceIndex)."""

    index: int
    id: str
    type: str
    datatoken: str
    service_endpoint: str
    files: str
    timeout: int
    compute: Mapping[str, Any]
    raw: Mapping[str, Any]

    @classmethod
    def parse(cls, index: int, raw: object) -> Service:
        if not isinstance(raw, Mapping):
            raise MalformedAssetError(f"Service {index} is not an object.")
        missing = [k for k in SERVICE_REQUIRED if k not in raw and k not in SERVICE_DEFAULTS]
        if missing:
            raise MalformedAssetError(f"Service {index} lacks {', '.join(missing)}.")
        datatoken = str(raw["datatokenAddress"])
        if not is_address(datatoken):
            raise MalformedAssetError(f"Service {index} has an invalid datatokenAddress.")
        timeout = raw.get("timeout", SERVICE_DEFAULTS["timeout"])
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
            raise MalformedAssetError(f"Service {index} has an invalid timeout.")
        compute = raw.get("compute") or {}
        return cls(
            index=index,
            id=str(raw["id"]),
            type=str(raw["type"]),
            datatoken=checksum_address(datatoken),
            service_endpoint=str(raw["serviceEndpoint"]),
            files=str(raw["files"]),
            timeout=timeout,
            compute=compute if isinstance(compute, Mapping) else {},
            raw=raw,
        )


@dataclass(frozen=True)
class Asset:
    """A resolved DDO."""

    did: str
    chain_id: int
    nft_address: str
    version: str
    metadata: Mapping[str, Any]
    services: tuple[Service, ...]
    credentials: Mapping[str, Any]
    nft_state: int
    nft_owner: str | None
    raw: Mapping[str, Any]
    layout: Layout = Layout.CLASSIC

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Asset:
        """Validate the fields a provider needs; keep the document as it is."""
        kind = layout(raw)
        fields = subject(raw)
        did = raw.get("id")
        chain_id = fields.get("chainId")
        nft_address = fields.get("nftAddress") or (
            (raw.get("nft") or {}).get("address") if kind is Layout.CLASSIC else None)
        if not isinstance(did, str) or not did.startswith(kind.did_prefix):
            raise MalformedAssetError("Asset malformed: invalid id.")
        if not isinstance(chain_id, int) or isinstance(chain_id, bool):
            raise MalformedAssetError("Asset malformed: invalid chainId.")
        if not isinstance(nft_address, str) or not is_address(nft_address):
            raise MalformedAssetError("Asset malformed: invalid nftAddress.")
        services = fields.get("services") or []
        if not isinstance(services, list):
            raise MalformedAssetError("Asset malformed: services must be a list.")
        nft = indexed_nft(raw)
        state = nft.get("state", 0)
        metadata = fields.get("metadata")
        credentials = fields.get("credentials")
        return cls(
            did=did,
            chain_id=chain_id,
            nft_address=checksum_address(nft_address),
            version=str(raw.get("version", "4.0.0")),
            metadata=metadata if isinstance(metadata, Mapping) else {},
            services=tuple(Service.parse(i, s) for i, s in enumerate(services)),
            credentials=credentials if isinstance(credentials, Mapping) else {},
            nft_state=state if isinstance(state, int) and not isinstance(state, bool) else 0,
            nft_owner=str(nft["owner"]) if nft.get("owner") else None,
            raw=raw,
            layout=kind,
        )

    def service(self, service_id: str) -> Service:
        """The service with ``id == service_id`` (exact match); 400 if absent."""
        for service in self.services:
            if service.id == service_id:
                return service
        raise BadRequestError("Invalid serviceId.", code="invalid_service_id")

    @property
    def is_algorithm(self) -> bool:
        return self.metadata.get("type") == "algorithm"
