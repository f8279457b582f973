"""DID -> DDO: the built-in index, or an existing Aquarius (``AQUARIUS_URL``)."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

import httpx
import orjson

from tidegate.assets.ddo import Asset
from tidegate.errors import BadRequestError, ServiceUnavailableError
from tidegate.stores.base import Store


class AssetNotFoundError(BadRequestError):
    code = "did_not_found"

    def __init__(self) -> None:
        super().__init__("Cannot resolve DID")


class Resolver(Protocol):
    async def resolve_raw(self, did: str) -> dict[str, object] | None:
        """The DDO document, or None if unknown."""


class IndexedResolver:
    """Resolve from the built-in indexer's store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def resolve_raw(self, did: str) -> dict[str, object] | None:
        text = await self.store.get_ddo(did)
        if text is None:
            return None
        document: dict[str, object] = orjson.loads(text)
        return document


class AquariusResolver:
    """Resolve through ``GET {AQUARIUS_URL}/api/aquarius/assets/ddo/{did}``."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    async def resolve_raw(self, did: str) -> dict[str, object] | None:
        try:
            response = await self.http.get(
                f"{self.base_url}/api/aquarius/assets/ddo/{quote(did, safe=':')}"
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError("The metadata cache is unavailable.") from exc
        if response.status_code != 200:
            return None
        try:
            document = response.json()
        except ValueError:
            return None
        return document if isinstance(document, dict) else None


async def resolve_asset(resolver: Resolver, did: str) -> Asset:
    """The parsed asset of ``did``; 400 "Cannot resolve DID" if unknown."""
    raw = await resolver.resolve_raw(did)
    if raw is None:
        raise AssetNotFoundError()
    return Asset.parse(raw)
