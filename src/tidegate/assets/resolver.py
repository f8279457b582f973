"""DID -> DDO: the built-in index, or an existing Aquarius (``AQUARIUS_URL``)."""

from __future__ import annotations

from collections import OrderedDict
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

    async def resolve(self, did: str) -> Asset | None:
        """The parsed asset, or None if unknown. Shared: callers must not mutate it."""


class IndexedResolver:
    """Resolve from the built-in indexer's store.

    Parsed assets are kept per DID together with the stored text they came from, and
    reused only while the store still holds exactly that text: the store is read on
    every call (a point read), so an update by the indexer, in this process or another
    worker, is seen at once. Only the parse is saved.
    """

    def __init__(self, store: Store, cache_size: int = 1024) -> None:
        self.store = store
        self._parsed: OrderedDict[str, tuple[str, Asset]] = OrderedDict()
        self._cache_size = cache_size

    async def resolve_raw(self, did: str) -> dict[str, object] | None:
        text = await self.store.get_ddo(did)
        if text is None:
            return None
        document: dict[str, object] = orjson.loads(text)
        return document

    async def resolve(self, did: str) -> Asset | None:
        text = await self.store.get_ddo(did)
        if text is None:
            self._parsed.pop(did, None)
            return None
        cached = self._parsed.get(did)
        if cached is not None and cached[0] == text:
            self._parsed.move_to_end(did)
            return cached[1]
        asset = Asset.parse(orjson.loads(text))
        self._parsed[did] = (text, asset)
        if len(self._parsed) > self._cache_size:
            self._parsed.popitem(last=False)
        return asset


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

    async def resolve(self, did: str) -> Asset | None:
        raw = await self.resolve_raw(did)
        return None if raw is None else Asset.parse(raw)


async def resolve_asset(resolver: Resolver, did: str) -> Asset:
    """The parsed asset of ``did``; 400 "Cannot resolve DID" if unknown."""
    asset = await resolver.resolve(did)
    if asset is None:
        raise AssetNotFoundError()
    return asset
