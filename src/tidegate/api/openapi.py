"""OpenAPI 3.1 document generated from the route table and its request models.

The schemas are the JSON Schemas of the very models that validate each request
(:mod:`tidegate.api.params`): required fields, types, patterns and bounds come from
the vocabulary types of :mod:`tidegate.types`, so a request the document calls valid
is accepted and one it calls invalid is refused.
"""

from __future__ import annotations

from typing import Any, Final

from tidegate import __version__
from tidegate.api.params import NoParams
from tidegate.api.routes import Endpoint

_ERROR_SCHEMA: Final = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "code": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["error", "code"],
}
_REF: Final = "#/components/schemas/{model}"
PARAMETERS_SOURCE: Final = "x-tidegate-parameters"
"""Extension of an operation whose parameters are the query's, else the JSON body's."""
_ERROR_CONTENT: Final = {"application/json": {"schema": _ERROR_SCHEMA}}
#: The server errors an operation may answer besides a bug (500): a dependency down
#: (every operation that needs one) and, where a file is fetched, its origin failing.
_UNAVAILABLE: Final = (503, "A dependency is unavailable (chain RPC, metadata source or "
                            "database); retry later")
_ORIGIN_ERRORS: Final = ((502, "The file's origin failed or answered too much"),
                         (504, "The file's origin did not answer in time"))


def _parameters(schema: dict[str, Any], where: str) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    return [{"name": name, "in": where, "required": where == "path" or name in required,
             "schema": prop} for name, prop in schema.get("properties", {}).items()]


def _operation(endpoint: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": endpoint.name, "summary": endpoint.summary}
    if endpoint.params is not NoParams:
        schema = endpoint.params.model_json_schema(ref_template=_REF)
        components.update(schema.pop("$defs", {}))
        if endpoint.variant is not None:  # JSON bodies only: one schema per generation
            other = endpoint.variant.params.model_json_schema(ref_template=_REF)
            components.update(other.pop("$defs", {}))
            schema = {"type": "object", "if": endpoint.variant.rule, "then": other,
                      "else": schema, "title": schema.get("title", ""),
                      "description": "Two request forms, told apart by the fields in "
                                     "`if` (docs/ocean-node.md)."}
        if endpoint.source in ("params", "query"):
            op["parameters"] = _parameters(schema, "query")
        elif endpoint.source == "path":
            op["parameters"] = _parameters(schema, "path")
        if endpoint.source in ("params", "json"):
            op["requestBody"] = {"required": endpoint.source == "json",
                                 "content": {"application/json": {"schema": schema}}}
        if endpoint.source == "params":
            op["description"] = ("Parameters come from the query string, or from a JSON "
                                 "object body when the query is empty (never both: with a "
                                 "query, the body is not read).")
            # The same rule for tools: OpenAPI cannot say "the query, else the body".
            op[PARAMETERS_SOURCE] = "query, else body"
    if endpoint.free_body == "bytes":
        op["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                 "format": "binary"}}},
        }
    elif endpoint.free_body == "json":
        op["requestBody"] = {"required": endpoint.body_required, "content": {
            "application/json": {"schema": endpoint.body_schema or {"type": "object"}}}}
    responses: dict[str, Any] = {
        str(status): {"description": text} for status, text in endpoint.responses
    } or {"200": {"description": "Success"}}
    documented = ([] if endpoint.static else [_UNAVAILABLE]) + (
        list(_ORIGIN_ERRORS) if endpoint.fetches_files else [])
    for status, text in documented:
        responses.setdefault(str(status), {"description": text, "content": _ERROR_CONTENT})
    responses["default"] = {"description": "Error", "content": _ERROR_CONTENT}
    op["responses"] = responses
    return op


def openapi_document(endpoints: list[Endpoint], root_path: str) -> dict[str, Any]:
    """Describe every endpoint, its parameters and its error shape."""
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(
            endpoint, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tidegate", "version": __version__,
                 "description": "Wire-compatible Ocean Protocol Provider"},
        "servers": [{"url": root_path or "/"}],
        "paths": paths,
        "components": {"schemas": components},
    }
