"""Request parameters at the edge: read each source once, validate into one model.

Sources (``Endpoint.source``):

* ``params``: the query string, or the JSON object body when the query is empty. As
  in the reference the two are never merged: any query parameter makes the body
  invisible. A GET with ``Content-Type: application/json`` and no body is normal
  (ocean.js) and yields no parameters;
* ``json``: the JSON object body only (compute start, initializeCompute);
* ``query``: the query string only (the body is raw bytes: encrypt);
* ``path``: the route's path parameters.

:func:`parse_model` is the one place where a validation failure becomes a client
error: a field whose rule names a code (``invalid_nonce``, ``invalid_address``...)
answers with that code and the rule's message; anything else (missing fields, wrong
JSON types) is a ``validation_error`` listing every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final, TypeVar

import orjson
import pydantic
from pydantic.fields import FieldInfo
from starlette.requests import Request

from tidegate.errors import BadRequestError, PayloadTooLargeError, ValidationError
from tidegate.settings import DEFAULT_MAX_JSON_DEPTH
from tidegate.types import digits_value

M = TypeVar("M", bound=pydantic.BaseModel)

MAX_PARAMS_BODY: Final = 1024 * 1024
NONCE_RULE: Final = (
    "Required unless the request carries an AuthToken or Authorization header (a token "
    "alone, as Ocean Node's clients send it; a header, so no schema of these parameters "
    "can require it).")
_REFUSE: Final = object()


async def read_body(request: Request, limit: int) -> bytes:
    """Read the whole body, refusing (413) more than ``limit`` bytes without buffering it."""
    declared = request.headers.get("content-length")
    # A header that is not plain digits is left to the stream count below.
    size_declared = digits_value(declared) if declared is not None else None
    if size_declared is not None and size_declared > limit:
        raise PayloadTooLargeError(f"The request body exceeds {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"The request body exceeds {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels deep.

    Iterative (a deep document cannot exhaust the stack), and only containers are
    visited: linear in the number of objects and arrays.
    """
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children
                       if isinstance(child, dict | list))
    return False


def decode_json(body: bytes, subject: str = "The request body", *,
                empty: object = _REFUSE, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Any:
    """The JSON value of ``body``; 400 ``invalid_json`` naming ``subject`` if it is not JSON,
    400 ``json_too_deep`` if it nests more than ``max_depth`` levels
    (``TIDEGATE_MAX_JSON_DEPTH``: no request of the API needs many; deep documents
    only cost time in every later walk over them).

    An empty (or blank) body gives ``empty``, or is refused like bad JSON if no
    ``empty`` is given.
    """
    if not body.strip() and empty is not _REFUSE:
        return empty
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequestError(f"{subject} is not valid JSON.", code="invalid_json") from None
    if isinstance(value, dict | list) and too_deep(value, max_depth):
        raise BadRequestError(f"{subject} nests deeper than {max_depth} levels.",
                              code="json_too_deep")
    return value


def max_json_depth(request: Request) -> int:
    """``TIDEGATE_MAX_JSON_DEPTH`` of the app serving ``request`` (the default before the
    app's services exist)."""
    svc = getattr(request.app.state, "services", None)
    depth = getattr(getattr(svc, "settings", None), "max_json_depth", None)
    return depth if isinstance(depth, int) else DEFAULT_MAX_JSON_DEPTH


def json_object(body: bytes, subject: str = "The request body", *,
                max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> dict[str, Any]:
    """The JSON object of ``body`` (``{}`` when empty); 400 ``invalid_json`` otherwise."""
    data = decode_json(body, subject, empty={}, max_depth=max_depth)
    if not isinstance(data, dict):
        raise BadRequestError(f"{subject} must be a JSON object.", code="invalid_json")
    return data


async def read_params(request: Request) -> dict[str, Any]:
    """The request's parameters (query first, else the JSON object body)."""
    if request.query_params:
        return dict(request.query_params)
    return await read_json(request)


async def read_json(request: Request) -> dict[str, Any]:
    """The JSON object body (the query string is not read)."""
    return json_object(await read_body(request, MAX_PARAMS_BODY),
                       max_depth=max_json_depth(request))


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


# Messages for pydantic's own error types (a wrong JSON type, mostly).
_MESSAGES: Final = {
    "missing": "The {field} field is required.",
    "string_type": "The {field} must be a string.",
    "dict_type": "The {field} must be an object.",
    "model_type": "The {field} must be an object.",
    "model_attributes_type": "The {field} must be an object.",
    "list_type": "The {field} must be a list.",
    "too_short": "The {field} field is required.",
    "bool_type": "The {field} must be a boolean.",
    "bool_parsing": "The {field} must be a boolean.",
}


def parse_model(model: type[M], data: Mapping[str, Any]) -> M:
    """Validate ``data`` into ``model``, or raise the client error for the first problem.

    A failed rule with a code of its own (see :mod:`tidegate.types`) is answered with
    that code and message when it is the only kind of problem; otherwise the answer is
    ``validation_error`` with ``errors`` mapping each field to its message. A model's
    :meth:`Params.problems` (rules across fields) runs once every field is valid.
    """
    try:
        parsed = model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors: dict[str, str] = {}
        coded: list[BadRequestError] = []
        for err in exc.errors(include_url=False, include_input=False):
            field = _field_name(err["loc"])
            code = str((err.get("ctx") or {}).get("code", "validation_error")) \
                if err["type"] == "tidegate" else "validation_error"
            template = err["msg"] if err["type"] == "tidegate" else _MESSAGES.get(
                err["type"], "The {field} is invalid: " + err["msg"].rstrip(".") + ".")
            message = template.replace("{field}", field)
            errors.setdefault(field, message)
            if code != "validation_error":
                coded.append(BadRequestError(message, code=code))
        if coded and len(coded) == len(errors):
            raise coded[0] from None
        raise ValidationError(errors) from None
    if isinstance(parsed, Params):
        problems = parsed.problems()
        if problems:
            raise ValidationError(problems)
    return parsed


async def parse_params(request: Request, model: type[M]) -> M:
    """Read and validate the request's parameters (query or JSON body) into ``model``."""
    return parse_model(model, await read_params(request))


def _is_text(field: FieldInfo) -> bool:
    # A plain ``str`` field (not a vocabulary type with its own validator).
    return field.annotation in (str, str | None) and not field.metadata


_OUTER: Final = ("title", "description", "default", "examples")


def _takes_empty_text(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return (kind == "string" or (isinstance(kind, list) and "string" in kind)) and not (
        set(node) & {"pattern", "minLength", "enum", "const", "format", "anyOf"})


def wire_rules(schema: dict[str, Any], model: type[pydantic.BaseModel]) -> None:
    """Document in the JSON Schema what :class:`Params` does beyond pydantic's defaults."""
    groups = getattr(model, "required_one_of", ())
    if groups:  # null and "" count as absent here too
        schema["anyOf"] = [{"required": list(group), "properties": {
            name: {"not": {"enum": [None, ""]}} for name in group}} for group in groups]
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        field = model.model_fields.get(name)
        if field is not None and _is_text(field):
            for node in (prop, *prop.get("anyOf", ())):
                if node.get("type") == "string":
                    node["type"] = ["string", "number"]  # a JSON number is taken as its text
                    if name in required:
                        node["minLength"] = 1  # "" counts as absent
        if name in required:
            continue
        # An optional field may be sent as null or "": both count as absent.
        if "anyOf" not in prop or any(k not in (*_OUTER, "anyOf") for k in prop):
            inner = {k: v for k, v in prop.items() if k not in _OUTER}
            outer = {k: v for k, v in prop.items() if k in _OUTER}
            prop.clear()
            prop.update(outer, anyOf=[inner])
        branches = prop["anyOf"]
        if not any(node.get("type") == "null" for node in branches):
            branches.append({"type": "null"})
        if not any(_takes_empty_text(node) for node in branches):
            branches.append({"const": ""})


class Params(pydantic.BaseModel):
    """Base of request models: the wire form of one endpoint's parameters.

    JSON numbers given for text fields become text (signed fields are concatenated
    into the signed message exactly as received, and Python renders a JSON integer as
    the client wrote it). An empty value (``""`` or ``null``) counts as absent, as the
    reference's ``required`` rule: a required field sent empty is a missing field.
    Unknown keys are ignored. The JSON Schema says so too (:func:`wire_rules`).
    """

    model_config = pydantic.ConfigDict(
        coerce_numbers_to_str=True, extra="ignore", str_strip_whitespace=False,
        arbitrary_types_allowed=True, json_schema_extra=wire_rules,
    )
    required_one_of: ClassVar[tuple[tuple[str, ...], ...]] = ()
    """Alternative sets of fields, one of which must be given (a rule across fields that
    the model's validators enforce and the JSON Schema states as ``anyOf``)."""

    @pydantic.model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v is not None and v != ""}
        return data

    def problems(self) -> dict[str, str]:
        """Field -> message for rules across fields (none by default)."""
        return {}


class NoParams(Params):
    """An endpoint that reads no parameters."""


class RawKept(Params):
    """A model that also keeps the mapping it was parsed from (:attr:`raw`): for bodies
    whose free-form part is read as posted (a file object, a container to echo)."""

    _raw: dict[str, Any] = pydantic.PrivateAttr(default_factory=dict)

    @pydantic.model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: pydantic.ModelWrapValidatorHandler[Any]) -> Any:
        model = handler(data)
        if isinstance(data, Mapping) and isinstance(model, RawKept):
            model._raw = dict(data)
        return model

    @property
    def raw(self) -> dict[str, Any]:
        """The request's parameters as received."""
        return self._raw
