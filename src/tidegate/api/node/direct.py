"""``POST /directCommand``: a JSON body whose ``command`` names an Ocean Node handler.

Only the commands clients send over HTTP are served: ``status`` (ocean.js
``getNodeStatus``), ``nonce`` and ``fileInfo``. Each goes through the same model and
command as its route. Any other command is a 400 ``unknown_command`` naming the field
(Ocean Node answers 501 with the command echoed: an unknown *request* is the client's
error, and no error echoes the request).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Final

import pydantic
from starlette.requests import Request
from starlette.responses import Response

from tidegate import __version__
from tidegate.api.context import services
from tidegate.api.endpoints.files import FileInfoParams
from tidegate.api.node.files import render_entry
from tidegate.api.params import Params, RawKept, parse_model, wire_rules
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.auth.nonces import reported_nonce
from tidegate.commands.fileinfo import file_infos
from tidegate.types import ChecksumAddress, fail

_STARTED: Final = time.monotonic()


COMMANDS: Final = ("status", "nonce", "fileInfo")


def _command(raw: object) -> str:
    if not isinstance(raw, str) or raw not in COMMANDS:
        fail("unknown_command", "The {field} must be one of: " + ", ".join(COMMANDS) + ".")
    return raw


def _direct_schema(schema: dict[str, Any], model: type[pydantic.BaseModel]) -> None:
    wire_rules(schema, model)
    # Each command reads the rest of the body with its route's model.
    schema["allOf"] = [
        {"if": {"required": ["command"], "properties": {"command": {"const": name}}},
         "then": {k: v for k, v in params.model_json_schema().items()
                  if k in ("properties", "required", "anyOf", "allOf")}}
        for name, params in (("nonce", NonceCommand), ("fileInfo", FileInfoParams))]


class NonceCommand(Params):
    address: ChecksumAddress


class DirectCommandParams(RawKept):
    """``command``, and the parameters of that command: ``nonce`` reads ``address``,
    ``fileInfo`` the fileinfo request (``POST /api/services/fileInfo``)."""

    model_config = pydantic.ConfigDict(**{**RawKept.model_config,
                                          "json_schema_extra": _direct_schema})
    command: Annotated[str, pydantic.PlainValidator(_command),
                       pydantic.WithJsonSchema({"type": "string", "enum": list(COMMANDS)})]


def _status(request: Request) -> dict[str, Any]:
    svc = services(request)
    chains = [{"chainId": str(c.chain_id), "network": str(c.chain_id)}
              for c in svc.chains.by_id.values()]
    addresses = {c.provider_address for c in svc.chains.by_id.values()}
    return {
        "id": "",
        "publicKey": "",
        "friendlyName": "Tidegate",
        "address": addresses.pop() if len(addresses) == 1 else "",
        "version": __version__,
        "http": True,
        "p2p": False,
        "provider": chains,
        "indexer": chains if svc.settings.indexer_enabled else [],
        "supportedStorage": {"url": True, "ipfs": bool(svc.settings.ipfs_gateway),
                             "arweave": bool(svc.settings.arweave_gateway)},
        "uptime": int(time.monotonic() - _STARTED),
    }


async def post_direct_command(request: Request, p: DirectCommandParams) -> Response:
    svc = services(request)
    if p.command == "status":
        return JsonResponse(_status(request))
    if p.command == "nonce":
        q = parse_model(NonceCommand, p.raw)
        nonce = reported_nonce(await svc.store.get_nonce(q.address))
        return Response(str(nonce), media_type="text/plain")
    if p.command == "fileInfo":
        f = parse_model(FileInfoParams, p.raw)
        entries = await file_infos(f.command(), svc.resolver, svc.chains, svc.storage)
        return JsonResponse([render_entry(e) for e in entries])
    raise AssertionError(p.command)  # the model admits only COMMANDS


ENDPOINTS = [
    Endpoint("directCommand", "POST", "/directCommand", post_direct_command,
             "Ocean Node's direct command (status, nonce, fileInfo)",
             params=DirectCommandParams, source="json"),
]
