"""Request parameters: query string, or JSON body when the query is empty.

As in the reference, the two sources are never merged: any query parameter makes
the body invisible. A GET with ``Content-Type: application/json`` and no body is
normal (ocean.js) and yields no parameters.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
import pydantic
from starlette.requests import Request

from tidegate.errors import BadRequestError, PayloadTooLargeError, ValidationError

M = TypeVar("M", bound=pydantic.BaseModel)

MAX_PARAMS_BODY = 1024 * 1024


async def read_body(request: Request, limit: int) -> bytes:
    """Read the whole body, refusing (413) more than ``limit`` bytes without buffering it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"The request body exceeds {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"The request body exceeds {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_params(request: Request) -> dict[str, Any]:
    """The request's parameters (query first, else the JSON object body)."""
    if request.query_params:
        return dict(request.query_params)
    body = await read_body(request, MAX_PARAMS_BODY)
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequestError("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequestError("The request body must be a JSON object.", code="invalid_json")
    return data


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def parse_model(model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data`` into ``model``; failures become a 400 with per-field messages."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors(include_url=False, include_input=False):
            field = _field_name(err["loc"])
            if err["type"] == "missing":
                errors.setdefault(field, f"The {field} field is required.")
            else:
                errors.setdefault(field, f"The {field} is invalid: {err['msg']}.")
        raise ValidationError(errors) from None


async def parse_params(request: Request, model: type[M]) -> M:
    """Read and validate the request's parameters into ``model``."""
    return parse_model(model, await read_params(request))


class Params(pydantic.BaseModel):
    """Base of request parameter models: numbers given as JSON become text.

    Signed fields (a nonce, a chain id) are concatenated as text into the signed
    message exactly as received, so JSON numbers are rendered with Python ``str``.
    """

    model_config = pydantic.ConfigDict(
        coerce_numbers_to_str=True, extra="ignore", str_strip_whitespace=False
    )
