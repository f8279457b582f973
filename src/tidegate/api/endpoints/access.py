"""``GET initialize`` and ``GET download`` for access services."""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from tidegate.api.context import services
from tidegate.api.params import Params, parse_params
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.commands.download import DownloadRequest, download_file
from tidegate.commands.initialize import InitializeRequest, initialize_access
from tidegate.files.open import FileStream


def parse_userdata(raw: Any) -> Any:
    """``userdata`` arrives as a JSON string (query) or an object (JSON body)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None  # as the reference: undecodable userdata is dropped
    return raw


class InitializeParams(Params):
    documentId: str
    serviceId: str
    consumerAddress: str
    transferTxId: str | None = None
    fileIndex: str | None = None
    userdata: Any = None
    environment: str | None = None
    validUntil: str | None = None


class DownloadParams(Params):
    documentId: str
    serviceId: str
    consumerAddress: str
    transferTxId: str
    fileIndex: str
    nonce: str
    signature: str | None = None
    userdata: Any = None


async def get_initialize(request: Request) -> Response:
    p = await parse_params(request, InitializeParams)
    svc = services(request)
    answer = await initialize_access(
        InitializeRequest(did=p.documentId, service_id=p.serviceId, consumer=p.consumerAddress,
                          transfer_tx=p.transferTxId, file_index=p.fileIndex,
                          userdata=parse_userdata(p.userdata)),
        resolver=svc.resolver, chains=svc.chains, store=svc.store, orders=svc.orders,
        storage=svc.storage,
        fee_amount=svc.settings.access_fee_amount,
    )
    return JsonResponse(answer)


def _download_headers(stream: FileStream) -> dict[str, str]:
    content_type = stream.headers.get("content-type") or (
        mimetypes.guess_type(stream.filename)[0] or "application/octet-stream")
    headers = {
        "Content-Type": content_type,
        "Content-Disposition": f"attachment;filename={stream.filename}",
    }
    for name in ("content-length", "content-range", "accept-ranges"):
        value = stream.headers.get(name)
        if value:
            headers[name.title()] = value
    return headers


class RelayResponse(StreamingResponse):
    """Streams an opened file and always releases its upstream connection.

    Closing in the body iterator alone is not enough: when the client goes away
    before the first chunk (or sending the head fails), Starlette never starts the
    iterator, and its ``finally`` would never run.
    """

    def __init__(self, stream: FileStream) -> None:
        super().__init__(stream.iter_bytes(), status_code=stream.status_code,
                         headers=_download_headers(stream))
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.stream.aclose()


async def get_download(request: Request) -> Response:
    p = await parse_params(request, DownloadParams)
    svc = services(request)
    stream = await download_file(
        DownloadRequest(
            did=p.documentId, service_id=p.serviceId, consumer=p.consumerAddress,
            transfer_tx=p.transferTxId, file_index=p.fileIndex, nonce=p.nonce,
            signature=p.signature, auth_token=request.headers.get("AuthToken"),
            userdata=parse_userdata(p.userdata), range_header=request.headers.get("Range"),
        ),
        authenticator=svc.authenticator, resolver=svc.resolver, chains=svc.chains,
        orders=svc.orders, storage=svc.storage,
    )
    return RelayResponse(stream)


ENDPOINTS = [
    Endpoint("initialize", "GET", "/api/services/initialize", get_initialize,
             "Check access and quote the provider fee for an order", params=InitializeParams),
    Endpoint("download", "GET", "/api/services/download", get_download,
             "Stream a file of an ordered access service (signed documentId + nonce, "
             "or AuthToken)", params=DownloadParams,
             responses=((200, "The file"), (206, "Part of the file (Range)"))),
]
