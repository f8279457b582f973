"""Aquarius-compatible read API, served from the built-in index.

ocean.py and ocean.js can use Tidegate as their metadata cache: ``ddo/{did}``,
``metadata/{did}``, ``query`` (Elasticsearch-style) and ``ddo/validate``. The
not-found text keeps Aquarius' wording, which ocean.py's ``ddo_exists`` looks for.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.node.credentials import node_proof, node_token
from tidegate.api.params import (
    NoParams,
    Params,
    decode_json,
    json_object,
    max_json_depth,
    parse_model,
    read_body,
)
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.assets.versions import subject
from tidegate.commands.validate_ddo import (
    VALIDATE_DDO,
    NodeValidate,
    validate_document,
    validate_signed,
)
from tidegate.errors import NotFoundError
from tidegate.types import AddressText, Did, Nonce

BASE = "/api/aquarius/assets"
_MAX_BODY = 1024 * 1024


class DdoNotFoundError(NotFoundError):
    code = "ddo_not_found"


class DidPath(Params):
    did: Did


class NodeValidateParams(Params):
    """Ocean Node's ``ddo/validate`` body (ocean.js >= 6): the DDO and, optionally, the
    publisher's signature of ``publisherAddress + nonce + "validateDDO"``."""

    ddo: dict[str, Any]
    publisherAddress: AddressText | None = None
    nonce: Nonce | None = None
    signature: str | None = None


def is_node_validate(body: object) -> bool:
    """Ocean Node's form wraps the DDO in ``ddo``; a DDO itself always has an ``id``."""
    return isinstance(body, dict) and isinstance(body.get("ddo"), dict) and "id" not in body


async def _document(request: Request, did: str) -> dict[str, Any]:
    raw = await services(request).resolver.resolve_raw(did)
    if raw is None:
        raise DdoNotFoundError(f"Asset DID {did} not found in Elasticsearch.")
    return raw


async def get_ddo(request: Request, p: DidPath) -> Response:
    return JsonResponse(await _document(request, p.did))


async def get_metadata(request: Request, p: DidPath) -> Response:
    # A 5.x DDO keeps its metadata in credentialSubject.
    return JsonResponse(subject(await _document(request, p.did)).get("metadata", {}))


async def post_query(request: Request, _: NoParams) -> Response:
    # The body is an Elasticsearch query (free-form): read as it is.
    query = json_object(await read_body(request, _MAX_BODY), "The query",
                        max_depth=max_json_depth(request))
    # The index catches up with the store's change feed, then answers from postings.
    result = await services(request).search_index.search(query)
    return JsonResponse(result.render())


async def post_validate(request: Request, _: NoParams) -> Response:
    # The body is the DDO, whose exact bytes are hashed: read as it is.
    body = await read_body(request, _MAX_BODY)
    ddo = decode_json(body, "The DDO", max_depth=max_json_depth(request))
    svc = services(request)
    # The same key as operator-service requests: one rule (Settings.chain_independent_key).
    key = svc.settings.chain_independent_key.get_secret_value()
    if not is_node_validate(ddo):
        return JsonResponse(validate_document(body, ddo, key))
    p = parse_model(NodeValidateParams, ddo)
    token = node_token(request)
    proof = None
    if p.publisherAddress or p.signature or p.nonce is not None or token:
        proof = node_proof(p.publisherAddress or "", p.nonce, p.signature, VALIDATE_DDO, token)
    return JsonResponse(await validate_signed(NodeValidate(p.ddo, proof), key,
                                              svc.authenticator))


ENDPOINTS = [
    Endpoint("aquariusDdo", "GET", BASE + "/ddo/{did}", get_ddo,
             "The DDO of a DID (Aquarius-compatible)", params=DidPath, source="path",
             service=False),
    Endpoint("aquariusMetadata", "GET", BASE + "/metadata/{did}", get_metadata,
             "The metadata of a DID (Aquarius-compatible)", params=DidPath, source="path",
             service=False),
    Endpoint("aquariusQuery", "POST", BASE + "/query", post_query,
             "Elasticsearch-style search over indexed DDOs (no body: every DDO)",
             source="none", free_body="json", service=False, body_required=False),
    Endpoint("aquariusValidate", "POST", BASE + "/ddo/validate", post_validate,
             "Validate a DDO and sign its hash (proof for setMetaData); a JSON object that "
             "is not a valid DDO is answered 400 validation_error with errors {field: why} "
             "(the DDO rules are the validator's, not this schema's). Ocean Node's form "
             "{ddo, publisherAddress, nonce, signature} (signed address + nonce + "
             "'validateDDO') hashes JSON.stringify(ddo)", source="none",
             free_body="json", service=False),
]
