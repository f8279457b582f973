"""The rest of Aquarius v4's read API: asset names, indexed chains, index status, health.

Shapes and messages follow Aquarius (``aquarius/app/assets.py``, ``chains.py``,
``run.py``): ``POST assets/names`` answers ``{did: name}`` with ``""`` for a DID it
does not know; ``chains/list`` is ``{"<chainId>": true}``; ``chains/status/<chainId>``
is ``{"last_block": N}``, the last block the indexer stored completely. Errors are the
usual ``{"error": ...}`` bodies, with Aquarius' wording.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from tidegate.api.context import services
from tidegate.api.params import NoParams, Params, decode_json, max_json_depth, read_body
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.assets.resolver import Resolver
from tidegate.assets.versions import subject
from tidegate.errors import BadRequestError, NotFoundError, ServiceUnavailableError
from tidegate.types import digits_value

BASE = "/api/aquarius"
_MAX_BODY = 1024 * 1024
_LOOKUPS = 16
"""DIDs resolved at once by ``assets/names`` (each is a store read, or an HTTP request
to ``AQUARIUS_URL``)."""


class InvalidPayloadError(BadRequestError):
    code = "invalid_payload"


class ChainNotIndexedError(NotFoundError):
    code = "chain_not_indexed"


def _payload(request: Request, body: bytes) -> object:
    """As Aquarius: the query string if there is one, else the JSON body."""
    if request.query_params:
        return dict(request.query_params)
    try:
        return decode_json(body, empty=None, max_depth=max_json_depth(request))
    except BadRequestError:
        return None  # Aquarius answers its own "could not be converted" for bad JSON


async def _name(resolver: Resolver, did: str, limit: asyncio.Semaphore) -> object:
    async with limit:
        ddo = await resolver.resolve_raw(did)
    metadata = subject(ddo).get("metadata") if ddo else None  # 5.x: in credentialSubject
    return metadata.get("name", "") if isinstance(metadata, dict) else ""


_NAMES_BODY: Final = {
    "type": "object", "required": ["didList"],
    "properties": {"didList": {"type": "array", "minItems": 1, "items": {"type": "string"},
                               "description": "DIDs (one name each; \"\" if unknown)"}},
    "examples": [{"didList": ["did:op:" + "ab" * 32]}]}


class ChainPath(Params):
    chain_id: str


async def post_names(request: Request, _: NoParams) -> Response:
    data = _payload(request, await read_body(request, _MAX_BODY))
    if not isinstance(data, dict):
        raise InvalidPayloadError(
            "Invalid payload. The request could not be converted into a dict.")
    if "didList" not in data:
        raise InvalidPayloadError("`didList` is required in the request payload.")
    did_list: Any = data["didList"]
    if not did_list:
        raise InvalidPayloadError("The requested didList can not be empty.")
    if not isinstance(did_list, list):
        raise InvalidPayloadError("The didList must be a list.")
    if not all(isinstance(did, str) for did in did_list):
        raise InvalidPayloadError("The didList must be a list of DID strings.")
    dids = list(dict.fromkeys(did_list))
    resolver = services(request).resolver
    limit = asyncio.Semaphore(_LOOKUPS)
    names = await asyncio.gather(*(_name(resolver, did, limit) for did in dids))
    return JsonResponse(dict(zip(dids, names, strict=True)))


async def get_chains_list(request: Request, _: NoParams) -> Response:
    svc = services(request)
    if not svc.settings.indexer_enabled or not svc.chains.ids:
        raise NotFoundError("No chains found.", code="no_chains")
    return JsonResponse({str(chain_id): True for chain_id in svc.chains.ids})


async def get_chain_status(request: Request, p: ChainPath) -> Response:
    chain_id = digits_value(p.chain_id)
    last = None
    if chain_id is not None:
        last = await services(request).store.get_cursor(f"metadata:{chain_id}")
    if last is None:
        # As Aquarius: whatever the path says, a chain it does not index is a 404.
        raise ChainNotIndexedError(f"Chain {p.chain_id} is not indexed.")
    return JsonResponse({"last_block": last})


async def get_health(request: Request, _: NoParams) -> Response:
    """Aquarius' ``/health`` (Tidegate's own ``/health`` is its liveness probe)."""
    try:
        await services(request).store.ping()
    except Exception as exc:  # any failure of the store means "not connected"
        raise ServiceUnavailableError("Not connected to any database") from exc
    # Aquarius' exact text: the index here is Tidegate's store, not Elasticsearch.
    return PlainTextResponse("Elasticsearch connected")


ENDPOINTS = [
    Endpoint("aquariusNames", "POST", BASE + "/assets/names", post_names,
             "Names of assets by DID (Aquarius-compatible)", source="none", free_body="json",
             service=False, body_schema=_NAMES_BODY),
    Endpoint("aquariusChains", "GET", BASE + "/chains/list", get_chains_list,
             "Chains the built-in indexer follows (Aquarius-compatible)", source="none",
             service=False),
    Endpoint("aquariusChainStatus", "GET", BASE + "/chains/status/{chain_id}",
             get_chain_status, "Last block indexed on a chain (Aquarius-compatible)",
             params=ChainPath, source="path", service=False),
    Endpoint("aquariusHealth", "GET", BASE + "/health", get_health,
             "Index store reachable (Aquarius' health answer)", source="none", service=False),
]
