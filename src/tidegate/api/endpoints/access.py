"""``GET initialize`` and ``GET download`` for access services."""

from __future__ import annotations

import mimetypes
from typing import Any

import pydantic
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from tidegate.api.context import services
from tidegate.api.node.credentials import DOWNLOAD, request_token
from tidegate.api.outbound import probing, until_disconnect
from tidegate.api.params import NONCE_RULE, Params
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.auth.request_auth import SignedRequest
from tidegate.auth.signatures import download_message
from tidegate.commands.download import DownloadFile, download_file
from tidegate.commands.initialize import (
    AccessQuote,
    InitializeAccess,
    ValidOrder,
    initialize_access,
)
from tidegate.files.open import FileStream
from tidegate.files.ranges import client_range
from tidegate.types import (
    AddressText,
    ChecksumAddress,
    Did,
    FileIndex,
    Nonce,
    OrderTxHash,
    Userdata,
)


class InitializeParams(Params):
    documentId: Did
    serviceId: str
    consumerAddress: ChecksumAddress
    transferTxId: OrderTxHash | None = None
    fileIndex: FileIndex | None = None
    userdata: Userdata = None
    environment: str | None = pydantic.Field(
        None, description="Accepted and ignored (ocean.js sends it; access has none).")
    validUntil: str | None = pydantic.Field(
        None, description="Accepted and ignored (ocean.js sends it; access fees have none).")


class DownloadParams(Params):
    documentId: Did
    serviceId: str
    consumerAddress: AddressText
    transferTxId: OrderTxHash
    fileIndex: FileIndex
    nonce: Nonce | None = pydantic.Field(None, description=NONCE_RULE)
    signature: str | None = None
    userdata: Userdata = None
    policyServer: str | None = pydantic.Field(
        None, description="Accepted and ignored (Ocean Node's policy server hook).")


def render_quote(answer: ValidOrder | AccessQuote) -> dict[str, Any]:
    """The wire form of an initialize answer."""
    if isinstance(answer, ValidOrder):
        return {"validOrder": answer.order_tx}
    return {
        "datatoken": answer.datatoken,
        "nonce": answer.nonce,
        "providerFee": answer.provider_fee.to_json(),
        "computeAddress": answer.compute_address,
    }


async def get_initialize(request: Request, p: InitializeParams) -> Response:
    svc = services(request)
    answer = await probing(request, initialize_access(
        InitializeAccess(did=p.documentId, service_id=p.serviceId, consumer=p.consumerAddress,
                         transfer_tx=p.transferTxId, file_index=p.fileIndex,
                         userdata=p.userdata),
        resolver=svc.resolver, chains=svc.chains, store=svc.store, orders=svc.orders,
        storage=svc.probe_storage,
        fee_amount=svc.settings.access_fee_amount,
    ))
    return JsonResponse(render_quote(answer))


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


async def get_download(request: Request, p: DownloadParams) -> Response:
    svc = services(request)
    token, token_needs_nonce = request_token(request)
    # Until the origin's answer arrives; then RelayResponse notices a disconnect itself.
    stream = await until_disconnect(request, download_file(
        DownloadFile(
            did=p.documentId, service_id=p.serviceId, transfer_tx=p.transferTxId,
            file_index=p.fileIndex, userdata=p.userdata,
            range_header=client_range(request.headers.get("Range")),
            # Both generations' signed forms: did + nonce (classic) or consumerAddress +
            # nonce + "download" (Ocean Node); the AuthToken or Authorization token.
            proof=SignedRequest(signer=p.consumerAddress, message=download_message(p.documentId),
                                nonce=p.nonce, signature=p.signature, auth_token=token,
                                command=DOWNLOAD, token_needs_nonce=token_needs_nonce),
        ),
        authenticator=svc.authenticator, resolver=svc.resolver, chains=svc.chains,
        orders=svc.orders, storage=svc.storage, compute=svc.engine,
    ))
    return RelayResponse(stream)


ENDPOINTS = [
    Endpoint("initialize", "GET", "/api/services/initialize", get_initialize,
             "Check access and quote the provider fee for an order", params=InitializeParams,
             fetches_files=True),
    Endpoint("download", "GET", "/api/services/download", get_download,
             "Stream a file of an ordered access service (signed documentId + nonce, "
             "or consumerAddress + nonce + 'download'; or AuthToken / Authorization)",
             params=DownloadParams,
             responses=((200, "The file"), (206, "Part of the file (Range)")),
             fetches_files=True),
]
