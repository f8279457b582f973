"""Shared by the OpenAPI and bad-input tests: valid requests per route, hostile values,
and a small JSON Schema checker for the subset OpenAPI uses here."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from tests.helpers import CONSUMER_ADDRESS

DID = "did:op:" + "ab" * 32
TX = "0x" + "ab" * 32
SIG = "0x" + "11" * 65
FUTURE = 4_102_444_800  # 2100-01-01
CONTAINER = {"entrypoint": "python $ALGO", "image": "python", "tag": "3.11",
             "checksum": "sha256:" + "ab" * 32}
RAW_ALGORITHM = {"meta": {"rawcode": "print(1)", "container": CONTAINER}}

#: A request every route's model accepts (route name -> parameters).
BASELINES: dict[str, dict[str, Any]] = {
    "nonce": {"userAddress": CONSUMER_ADDRESS},
    "encrypt": {"chainId": "8996"},
    "decrypt": {"decrypterAddress": CONSUMER_ADDRESS, "chainId": 8996,
                "dataNftAddress": CONSUMER_ADDRESS, "nonce": "1", "signature": SIG,
                "transactionId": TX},
    "initialize": {"documentId": DID, "serviceId": "0", "consumerAddress": CONSUMER_ADDRESS},
    "download": {"documentId": DID, "serviceId": "0", "consumerAddress": CONSUMER_ADDRESS,
                 "transferTxId": TX, "fileIndex": 0, "nonce": "1", "signature": SIG},
    "fileinfo": {"did": DID, "serviceId": "0"},
    "computeEnvironments": {},
    "initializeCompute": {"datasets": [{"documentId": DID, "serviceId": "0"}],
                          "algorithm": RAW_ALGORITHM,
                          "compute": {"env": "env", "validUntil": FUTURE},
                          "consumerAddress": CONSUMER_ADDRESS},
    "computeStart": {"dataset": {"documentId": DID, "serviceId": "0", "transferTxId": TX},
                     "algorithm": RAW_ALGORITHM, "environment": "env",
                     "consumerAddress": CONSUMER_ADDRESS, "nonce": "1", "signature": SIG},
    "computeStatus": {"consumerAddress": CONSUMER_ADDRESS},
    "computeStop": {"consumerAddress": CONSUMER_ADDRESS, "jobId": "j", "nonce": "1",
                    "signature": SIG},
    "computeDelete": {"consumerAddress": CONSUMER_ADDRESS, "jobId": "j", "nonce": "1",
                      "signature": SIG},
    "computeResult": {"consumerAddress": CONSUMER_ADDRESS, "jobId": "j", "index": 0,
                      "nonce": "1", "signature": SIG},
    "validateContainer": dict(CONTAINER),
    "create_auth_token": {"address": CONSUMER_ADDRESS, "nonce": "1", "signature": SIG,
                          "expiration": FUTURE},
    "delete_auth_token": {"address": CONSUMER_ADDRESS, "nonce": "1", "signature": SIG,
                          "token": "t"},
    "fileInfo": {"did": DID, "serviceId": "0"},
    "generateAuthToken": {"address": CONSUMER_ADDRESS, "nonce": "1", "signature": SIG},
    "invalidateAuthToken": {"address": CONSUMER_ADDRESS, "nonce": "1", "signature": SIG,
                            "token": "t"},
    "directCommand": {"command": "status"},
    "freeCompute": {"datasets": [{"fileObject": {"type": "url", "url": "https://x.test/a"}}],
                    "algorithm": RAW_ALGORITHM, "environment": "env",
                    "consumerAddress": CONSUMER_ADDRESS, "nonce": "1", "signature": SIG,
                    "resources": [{"id": "cpu", "amount": 1}], "maxJobDuration": 60},
    "computeStart:node": {"datasets": [{"documentId": DID, "serviceId": "0"}],
                          "algorithm": RAW_ALGORITHM, "environment": "env",
                          "consumerAddress": CONSUMER_ADDRESS, "nonce": "1",
                          "signature": SIG, "resources": [{"id": "cpu", "amount": 1}],
                          "maxJobDuration": 60,
                          "payment": {"chainId": 8996, "token": CONSUMER_ADDRESS}},
    "initializeCompute:node": {"datasets": [{"documentId": DID, "serviceId": "0"}],
                               "algorithm": RAW_ALGORITHM, "environment": "env",
                               "consumerAddress": CONSUMER_ADDRESS, "maxJobDuration": 60,
                               "payment": {"chainId": 8996, "token": CONSUMER_ADDRESS,
                                           "resources": [{"id": "cpu", "amount": 1}]}},
    "computeStreamableLogs": {"jobId": "j", "consumerAddress": CONSUMER_ADDRESS,
                              "nonce": "1", "signature": SIG},
    "aquariusDdo": {"did": DID},
    "aquariusMetadata": {"did": DID},
    "aquariusChainStatus": {"chain_id": "8996"},
    "docsAsset": {"name": "swagger-ui.css"},
}

#: Values no strict field may take (and no field may answer with a 500).
HOSTILE: list[Any] = [
    "²", "١٢", "9" * 20, "9" * 5000, "NaN", "Infinity", "-1", str(2**256), 2**256, -1,
    1.5, True, {}, {"$ne": 1}, [], ["a"], "did:op:../../etc/passwd", "../../etc/passwd",
]


def fields(schema: dict[str, Any], components: dict[str, Any],
           prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(dotted path, schema) of every property, nested models (and list items) included."""
    found: list[tuple[str, dict[str, Any]]] = []
    for name, prop in schema.get("properties", {}).items():
        path = prefix + name
        found.append((path, prop))
        for node in (prop, *prop.get("anyOf", ())):
            if "$ref" in node:
                found += fields(resolve(node, components), components, path + ".")
            elif "$ref" in node.get("items", {}):
                found += fields(resolve(node["items"], components), components, path + ".0.")
    return found


def resolve(node: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = components[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _is_type(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":  # JSON Schema: 7.0 is an integer
        return isinstance(value, int | float) and not isinstance(value, bool) and \
            float(value).is_integer()
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    raise AssertionError(name)


def _same(value: Any, const: Any) -> bool:
    """JSON Schema equality: numbers by value (0 == 0.0), never a boolean for a number."""
    if isinstance(value, bool) or isinstance(const, bool):
        return isinstance(value, bool) and isinstance(const, bool) and value == const
    return bool(type(value) is type(const) or (
        isinstance(value, int | float) and isinstance(const, int | float))) and value == const


def valid(schema: dict[str, Any], value: Any, components: dict[str, Any]) -> bool:
    """Whether ``value`` satisfies ``schema`` (the keywords our OpenAPI document uses)."""
    schema = resolve(schema, components)
    if "anyOf" in schema and not any(valid(s, value, components) for s in schema["anyOf"]):
        return False
    kind = schema.get("type")
    if kind is not None and not any(
            _is_type(value, t) for t in (kind if isinstance(kind, list) else [kind])):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "const" in schema and not _same(value, schema["const"]):
        return False
    if "not" in schema and valid(schema["not"], value, components):
        return False
    if not all(valid(sub, value, components) for sub in schema.get("allOf", ())):
        return False
    if "if" in schema:
        branch = schema.get("then" if valid(schema["if"], value, components) else "else", {})
        if not valid(branch, value, components):
            return False
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return False
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            return False
        if schema.get("contentMediaType") == "application/json":
            try:
                decoded = json.loads(value)
            except ValueError:
                return False
            return valid(schema.get("contentSchema", {}), decoded, components)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        if "maximum" in schema and value > schema["maximum"]:
            return False
    if isinstance(value, dict) and len(value) < schema.get("minProperties", 0):
        return False
    if isinstance(value, dict) and any(key not in value for key in schema.get("required", ())):
        return False
    if isinstance(value, dict) and "properties" in schema:
        if any(key not in value for key in schema.get("required", ())):
            return False
        return all(valid(schema["properties"][k], v, components)
                   for k, v in value.items() if k in schema["properties"])
    if isinstance(value, list) and "items" in schema:
        return len(value) >= schema.get("minItems", 0) and all(
            valid(schema["items"], item, components) for item in value)
    return True


def samples(schema: dict[str, Any], components: dict[str, Any]) -> list[Any]:
    """The schema's own examples and integer bounds (each side), then :data:`HOSTILE`."""
    schema = resolve(schema, components)
    found: list[Any] = list(schema.get("examples", ()))
    for node in (schema, *schema.get("anyOf", ())):
        node = resolve(node, components)
        found += node.get("examples", [])
        if node.get("type") == "integer":
            if "maximum" in node:
                found += [node["maximum"], str(node["maximum"]), node["maximum"] + 1,
                          str(node["maximum"] + 1), "0" + str(node["maximum"])]
                if node["maximum"] < 2**53:  # a float holds it exactly
                    found += [float(node["maximum"]), float(node["maximum"] + 1)]
            if "minimum" in node:
                found.append(node["minimum"] - 1)
        for inner in node.get("anyOf", ()):
            found += samples(inner, components)
    return [*found, "", None, 0, 0.0, 7.0, *HOSTILE]


def with_value(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with the dotted ``path`` set to ``value``."""
    data = copy.deepcopy(base)
    node: Any = data
    *parents, last = path.split(".")
    for part in parents:  # KeyError/IndexError: the baseline has no such parent
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def without(base: dict[str, Any], path: str) -> dict[str, Any]:
    data = copy.deepcopy(base)
    node: Any = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.get(part, {})
    if isinstance(node, dict):
        node.pop(last, None)
    return data
