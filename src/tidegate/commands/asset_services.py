"""The preamble every consuming use case shares: asset, chain, service, consumability.

initialize, download and the compute use cases all start the same way (the
reference repeated it per route): resolve the DID ("Cannot resolve DID"), take the
asset's chain (unsupported chain), find the service by id (``invalid_service_id``),
check the asset is consumable by the consumer (state, credentials). Then some pick
one of the service's files by index (``invalid_file_index``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tidegate.assets.consumability import check_consumable
from tidegate.assets.ddo import Asset, Service
from tidegate.assets.resolver import Resolver, resolve_asset
from tidegate.chain.clients import ChainConfig, Chains
from tidegate.concurrency import cpu_bound
from tidegate.errors import BadRequestError
from tidegate.files.objects import FileObject, parse_file_object
from tidegate.files.service_files import decrypt_service_files


@dataclass(frozen=True)
class AssetService:
    """One service of a resolved asset, on its chain."""

    asset: Asset
    service: Service
    chain: ChainConfig


async def service_of(resolver: Resolver, chains: Chains, did: str,
                     service_id: str) -> AssetService:
    """Resolve ``did`` and find its service ``service_id`` (no consumability check)."""
    asset = await resolve_asset(resolver, did)
    chain = chains.get(asset.chain_id)
    return AssetService(asset, asset.service(service_id), chain)


async def consumable_service(resolver: Resolver, chains: Chains, did: str, service_id: str,
                             consumer: str) -> AssetService:
    """The service, once ``consumer`` may consume the asset now (else a 400)."""
    found = await service_of(resolver, chains, did, service_id)
    await check_consumable(found.chain, found.asset, consumer, found.service)
    return found


async def service_files(found: AssetService) -> list[dict[str, Any]]:
    """The service's decrypted file objects (``files_unavailable`` if they are not ours)."""
    return await cpu_bound(len(found.service.files), decrypt_service_files, found.asset,
                           found.service, found.chain.provider_key)


async def service_file(found: AssetService, index: int,
                       userdata: dict[str, Any] | None) -> FileObject:
    """File ``index`` of the service, parsed, with the consumer's ``userdata``.

    The one fileIndex rule: an index past the last file is a 400 ``invalid_file_index``
    (the reference's off-by-one gave a 503 for ``index == len``).
    """
    files = await service_files(found)
    if index >= len(files):
        raise BadRequestError(f"No such fileIndex {index}.", code="invalid_file_index")
    return parse_file_object(files[index], userdata)
