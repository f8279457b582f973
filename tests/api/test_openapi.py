"""OpenAPI is the behaviour: what /openapi.json calls valid is accepted, and what it
calls invalid is refused with the field named, for every model of every route.

The document is generated from the request models themselves; this test holds it to
them from the outside, with a JSON Schema check of the document's own schemas.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import httpx
import pytest

from tests.api.schema_samples import (
    BASELINES,
    fields,
    resolve,
    samples,
    valid,
    with_value,
    without,
)
from tidegate.api.openapi import openapi_document
from tidegate.api.params import NoParams, parse_model
from tidegate.api.routes import Endpoint
from tidegate.app import all_endpoints
from tidegate.errors import BadRequestError, ValidationError
from tidegate.types import digits_value

ENDPOINTS = [e for e in all_endpoints() if e.params is not NoParams]
#: A path both generations share may take two request forms (``Endpoint.variant``):
#: the document says ``if <what only the other form carries> then <its schema> else
#: <the endpoint's>``; each form is held to its branch, as its own pseudo-endpoint.
VARIANTS = {f"{e.name}:node": e for e in ENDPOINTS if e.variant is not None}
ENDPOINTS += [dataclasses.replace(e, name=name, params=e.variant.params, variant=None)
              for name, e in VARIANTS.items() if e.variant is not None]
DOCUMENT = openapi_document(all_endpoints(), "")
COMPONENTS: dict[str, Any] = DOCUMENT["components"]["schemas"]
FILE_OBJECT_KEYS = ("url", "method", "headers", "hash", "transactionId", "query", "address",
                    "chainId", "abi")
#: Rules across fields, which a JSON Schema of one field cannot state (each is in the
#: model's description): a fileinfo file type makes its own key required, and the
#: file object's keys are checked by its type's parser, only in the file-object form.
ACROSS_FIELDS = {(name, key) for name in ("fileinfo", "fileInfo")
                 for key in FILE_OBJECT_KEYS}


def _past_time(prop: dict[str, Any], sample: Any) -> bool:
    future = "in the future" in str(resolve(prop, COMPONENTS)) or any(
        "in the future" in str(resolve(node, COMPONENTS)) for node in prop.get("anyOf", ()))
    value = digits_value(sample)
    return future and value is not None and value <= time.time()


def schema_of(endpoint: Endpoint) -> dict[str, Any]:
    """The endpoint's schema as the document publishes it."""
    op = DOCUMENT["paths"][endpoint.path][endpoint.method.lower()]
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None and endpoint.source in ("params", "json"):
        schema: dict[str, Any] = body["schema"]
        if "if" in schema:  # the form the request carries
            return dict(schema["then" if endpoint.name in VARIANTS else "else"])
        return schema
    params = op.get("parameters", [])
    return {"type": "object", "properties": {p["name"]: p["schema"] for p in params},
            "required": [p["name"] for p in params if p["required"]]}


def outcome(endpoint: Endpoint, data: dict[str, Any]) -> tuple[bool, str]:
    """(accepted, the refusal's text: message and field names)."""
    try:
        parse_model(endpoint.params, data)
    except ValidationError as exc:
        return False, exc.message + " " + " ".join(exc.errors)
    except BadRequestError as exc:
        return False, exc.message
    return True, ""


def test_every_route_with_parameters_has_a_baseline() -> None:
    assert {e.name for e in ENDPOINTS} == set(BASELINES)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_schema_valid_is_accepted_and_invalid_refused(endpoint: Endpoint) -> None:
    schema = schema_of(endpoint)
    base = BASELINES[endpoint.name]
    assert valid(schema, base, COMPONENTS) and outcome(endpoint, base)[0], base
    checked = 0
    for path, prop in fields(schema, COMPONENTS):
        if (endpoint.name, path) in ACROSS_FIELDS:
            continue
        for sample in samples(prop, COMPONENTS):
            try:
                data = with_value(base, path, sample)
            except (KeyError, IndexError):
                continue  # a list the baseline leaves empty
            # "In the future" moves with the clock: no JSON Schema bound can say it (the
            # field's description does); a time already past is refused.
            expected = valid(schema, data, COMPONENTS) and not _past_time(prop, sample)
            accepted, refusal = outcome(endpoint, data)
            assert accepted == expected, (path, sample, refusal)
            if not accepted:
                assert path in refusal, (path, sample, refusal)  # or a field of its own
            checked += 1
    assert checked > 0 or not schema.get("properties")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_required_fields_are_required(endpoint: Endpoint) -> None:
    schema = schema_of(endpoint)
    base = BASELINES[endpoint.name]
    for path, _ in fields(schema, COMPONENTS):
        data = without(base, path)
        if data == base:
            continue
        accepted, refusal = outcome(endpoint, data)
        assert accepted == valid(schema, data, COMPONENTS), path
        if not accepted:
            assert path in refusal, (path, refusal)


async def test_the_served_document_is_the_one_checked(client: httpx.AsyncClient) -> None:
    served = (await client.get("/openapi.json")).json()
    assert served["paths"] == DOCUMENT["paths"]
    assert served["components"] == DOCUMENT["components"]
