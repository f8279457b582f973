"""``POST /api/services/fileinfo`` — validity, length, type and checksum of files.

Two forms: ``did`` + ``serviceId``, or a bare file object (``type`` and its keys) at
the top level of the request. The rules and messages are the reference's (its
``required_if`` rules), but a request with neither form is a 400 (the reference
crashed with a 503). The file object's own keys are checked by its type's parser
(:func:`tidegate.files.objects.parse_file_object`, the reference's messages) as the
command is built.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import pydantic
from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.outbound import probing
from tidegate.api.params import RawKept, wire_rules
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.commands.fileinfo import FileObjectInfo, ServiceFilesInfo, file_infos
from tidegate.files.objects import FILE_TYPES, parse_file_object
from tidegate.types import Did, Userdata, fail

_FALSE_TEXT: Final = frozenset({"false", "0", "no", "off", "n", "f", ""})
# Keys a bare file object must have, per type (the reference's required_if rules).
_REQUIRED_IF: Final = {"ipfs": "hash", "url": "url", "arweave": "transactionId"}


def _checksum(raw: object) -> bool:
    """Whether ``checksum`` asks for one: true/1/"true"/"1"/"yes"… yes; false/0/"false" no.

    Other non-empty text counts as yes (the reference tested truthiness).
    """
    if isinstance(raw, str):
        return raw.strip().lower() not in _FALSE_TEXT
    if isinstance(raw, bool | int | float):
        return bool(raw)
    fail("validation_error", "The {field} must be a boolean, a number or a string.")


def _file_type(raw: object) -> str:
    if not isinstance(raw, str) or raw not in FILE_TYPES:
        fail("validation_error", "The selected {field} is invalid.")
    return raw


# File-object keys: documented here, checked by the file type's parser (which answers
# invalid_file_object with the reference's messages, not validation_error).
_Text = Annotated[Any, pydantic.WithJsonSchema({"type": "string"})]
_Method = Annotated[Any, pydantic.WithJsonSchema({"type": "string", "enum": ["get", "post"],
                                                  "description": "Any letter case."})]
_Headers = Annotated[Any, pydantic.WithJsonSchema(
    {"type": "object", "additionalProperties": {"type": ["string", "number"]}})]
_ChainId = Annotated[Any, pydantic.WithJsonSchema({"type": ["integer", "string"]})]
_Abi = Annotated[Any, pydantic.WithJsonSchema({"type": "object"})]


_PRESENT: Final[dict[str, Any]] = {"not": {"enum": [None, "", [], {}]}}


def _fileinfo_schema(schema: dict[str, Any], model: type[pydantic.BaseModel]) -> None:
    wire_rules(schema, model)
    # A type's own key is required with it (absent: null, "", [] and {} too).
    schema["allOf"] = [
        {"if": {"required": ["type"], "properties": {"type": {"const": kind}}},
         "then": {"required": [key], "properties": {key: _PRESENT}}}
        for kind, key in sorted(_REQUIRED_IF.items())]


class FileInfoParams(RawKept):
    """``did`` + ``serviceId``, or a file object (``type`` and its keys; ``url`` for url,
    ``hash`` for ipfs, ``transactionId`` for arweave are required with the type);
    ``checksum`` asks for sha256s."""

    model_config = pydantic.ConfigDict(**{**RawKept.model_config,
                                          "json_schema_extra": _fileinfo_schema})

    required_one_of = (("did", "serviceId"), ("type",))

    did: Did | None = None
    serviceId: str | None = None
    checksum: Annotated[bool, pydantic.PlainValidator(_checksum), pydantic.WithJsonSchema(
        {"anyOf": [{"type": "boolean"}, {"type": "number"}, {"type": "string"}]})] = False
    userdata: Userdata = None
    type: Annotated[str, pydantic.PlainValidator(_file_type), pydantic.WithJsonSchema(
        {"type": "string", "enum": sorted(FILE_TYPES)})] | None = None
    url: _Text = None
    method: _Method = None
    headers: _Headers = None
    hash: _Text = None
    transactionId: _Text = None
    query: _Text = None
    address: _Text = None
    chainId: _ChainId = None
    abi: _Abi = None

    def problems(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if self.did is None and self.type is None:
            errors["did"] = "The did field is required when type is not present."
            errors["type"] = "The type field is required when did is not present."
        if self.type is None and not self.serviceId:
            errors["serviceId"] = "The serviceId field is required when type is not present."
        needed = _REQUIRED_IF.get(self.type or "")
        if needed is not None and not _present(self.raw.get(needed)):
            errors[needed] = f"The {needed} field is required when type is {self.type}."
        return errors

    def command(self) -> ServiceFilesInfo | FileObjectInfo:
        # The did form wins when both are given, as in the reference.
        if self.did is not None and self.serviceId is not None:
            return ServiceFilesInfo(self.did, self.serviceId, self.checksum, self.userdata)
        # The file object as posted: its type's parser reads its keys.
        return FileObjectInfo(parse_file_object(self.raw, self.userdata), self.checksum)


def _present(value: object) -> bool:
    """The reference's ``required``: ``None``, ``""``, ``[]`` and ``{}`` are absent."""
    return value is not None and value != "" and value != [] and value != {}


async def post_fileinfo(request: Request, p: FileInfoParams) -> Response:
    svc = services(request)
    return JsonResponse(await probing(request, file_infos(
        p.command(), svc.resolver, svc.chains, svc.probe_storage)))


ENDPOINTS = [
    Endpoint("fileinfo", "POST", "/api/services/fileinfo", post_fileinfo,
             "Check the files of a service (did + serviceId) or one file object: validity, "
             "contentLength, contentType, filename and, with checksum, their sha256",
             params=FileInfoParams, responses=((200, "One entry per file, in order"),),
             fetches_files=True),
]
