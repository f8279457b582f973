"""``POST /api/services/fileInfo`` (capital I): Ocean Node's file details.

The request is the classic fileinfo's (``did`` + ``serviceId``, or a file object, and
``checksum``: ocean.js sends the same body to both), parsed by the same model and
answered by the same command; only the entries are rendered as Ocean Node renders them:
``{valid, contentLength, contentType, name, type}`` (+ ``checksum``), with the name
under ``name`` where the classic answer says ``filename``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.endpoints.files import FileInfoParams
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.commands.fileinfo import FileEntry, file_infos


def render_entry(entry: FileEntry) -> dict[str, Any]:
    """One file, as Ocean Node lists it."""
    rendered: dict[str, Any] = {
        "valid": bool(entry.get("valid")),
        "contentLength": str(entry.get("contentLength", "")),
        "contentType": entry.get("contentType", ""),
        "name": entry.get("filename", ""),
        "type": entry.get("type", ""),
    }
    if "checksum" in entry:
        rendered["checksum"] = entry["checksum"]
    return rendered


async def post_file_info(request: Request, p: FileInfoParams) -> Response:
    svc = services(request)
    entries = await file_infos(p.command(), svc.resolver, svc.chains, svc.storage)
    return JsonResponse([render_entry(e) for e in entries])


ENDPOINTS = [
    Endpoint("fileInfo", "POST", "/api/services/fileInfo", post_file_info,
             "Ocean Node's fileInfo: the files of a service (did + serviceId) or one file "
             "object, as {valid, contentLength, contentType, name, type}",
             params=FileInfoParams, responses=((200, "One entry per file, in order"),)),
]
