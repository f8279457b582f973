"""OpenAPI 3.1 document generated from the route table."""

from __future__ import annotations

from typing import Any

from tidegate import __version__
from tidegate.api.routes import Endpoint

_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "code": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["error", "code"],
}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": endpoint.name, "summary": endpoint.summary}
    schema = endpoint.params.model_json_schema() if endpoint.params else None
    if schema is not None and endpoint.body in ("params", "raw"):
        required = set(schema.get("required", []))
        op["parameters"] = [
            {"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()
        ]
        if endpoint.body == "params":
            op["description"] = (
                "Parameters may also be sent as a JSON object body when the query is empty."
            )
    if endpoint.body == "raw":
        op["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                 "format": "binary"}}},
        }
    elif endpoint.body == "json" and schema is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": schema}}}
    responses: dict[str, Any] = {
        str(status): {"description": text} for status, text in endpoint.responses
    } or {"200": {"description": "Success"}}
    responses["default"] = {
        "description": "Error",
        "content": {"application/json": {"schema": _ERROR_SCHEMA}},
    }
    op["responses"] = responses
    return op


def openapi_document(endpoints: list[Endpoint], root_path: str) -> dict[str, Any]:
    """Describe every endpoint, its parameters and its error shape."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tidegate", "version": __version__,
                 "description": "Wire-compatible Ocean Protocol Provider"},
        "servers": [{"url": root_path or "/"}],
        "paths": paths,
    }
