"""Aquarius-compatible read API, served from the built-in index.

ocean.py and ocean.js can use Tidegate as their metadata cache: ``ddo/{did}``,
``metadata/{did}``, ``query`` (Elasticsearch-style) and ``ddo/validate``. The
not-found text keeps Aquarius' wording, which ocean.py's ``ddo_exists`` looks for.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.params import read_body
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.assets.validation import validation_proof
from tidegate.errors import BadRequestError, NotFoundError

BASE = "/api/aquarius/assets"
_MAX_BODY = 1024 * 1024


class DdoNotFoundError(NotFoundError):
    code = "ddo_not_found"


async def _document(request: Request) -> dict[str, Any]:
    did = request.path_params["did"]
    raw = await services(request).resolver.resolve_raw(did)
    if raw is None:
        raise DdoNotFoundError(f"Asset DID {did} not found in Elasticsearch.")
    return raw


async def get_ddo(request: Request) -> Response:
    return JsonResponse(await _document(request))


async def get_metadata(request: Request) -> Response:
    return JsonResponse((await _document(request)).get("metadata", {}))


async def post_query(request: Request) -> Response:
    body = await read_body(request, _MAX_BODY)
    try:
        query = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        raise BadRequestError("The query is not valid JSON.", code="invalid_json") from None
    if not isinstance(query, dict):
        raise BadRequestError("The query must be a JSON object.", code="invalid_json")
    # The index catches up with the store's change feed, then answers from postings.
    result = await services(request).search_index.search(query)
    return JsonResponse(result.render())


async def post_validate(request: Request) -> Response:
    body = await read_body(request, _MAX_BODY)
    try:
        ddo = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequestError("The DDO is not valid JSON.", code="invalid_json") from None
    # The same key as operator-service requests: one rule (Settings.chain_independent_key).
    key = services(request).settings.chain_independent_key
    return JsonResponse(validation_proof(body, ddo, key.get_secret_value()))


ENDPOINTS = [
    Endpoint("aquariusDdo", "GET", BASE + "/ddo/{did}", get_ddo,
             "The DDO of a DID (Aquarius-compatible)", body="none", service=False),
    Endpoint("aquariusMetadata", "GET", BASE + "/metadata/{did}", get_metadata,
             "The metadata of a DID (Aquarius-compatible)", body="none", service=False),
    Endpoint("aquariusQuery", "POST", BASE + "/query", post_query,
             "Elasticsearch-style search over indexed DDOs", body="none", service=False),
    Endpoint("aquariusValidate", "POST", BASE + "/ddo/validate", post_validate,
             "Validate a DDO and sign its hash (proof for setMetaData)", body="none",
             service=False),
]
