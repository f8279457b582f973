"""``POST /api/services/fileinfo`` — validity, length, type and checksum of files."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import Services, services
from tidegate.api.params import Params, read_params
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.commands.fileinfo import file_infos
from tidegate.files.storages import StorageContext


class FileInfoParams(Params):
    """Documentation of the two body forms; validation is :mod:`tidegate.commands.fileinfo`.

    Either ``did`` + ``serviceId``, or a bare file object (``type`` and its keys).
    """

    did: str | None = None
    serviceId: str | None = None
    checksum: bool | str | int | None = None
    userdata: dict[str, Any] | str | None = None
    type: str | None = None
    url: str | None = None
    method: str | None = None
    headers: dict[str, Any] | None = None
    hash: str | None = None
    transactionId: str | None = None
    query: str | None = None
    address: str | None = None
    chainId: int | str | None = None
    abi: dict[str, Any] | None = None


def storage_context(svc: Services) -> StorageContext:
    """What the file functions need, from the process's services and settings."""
    settings = svc.settings
    return StorageContext(
        ipfs_gateway=settings.ipfs_gateway,
        arweave_gateway=settings.arweave_gateway,
        chains=svc.chains,
        fetcher=svc.fetcher,
        max_checksum_length=settings.max_checksum_length,
    )


async def post_fileinfo(request: Request) -> Response:
    # The body is free-form (a file object has type-specific keys): read it as is.
    data = await read_params(request)
    svc = services(request)
    return JsonResponse(await file_infos(data, svc.resolver, svc.chains, storage_context(svc)))


ENDPOINTS = [
    Endpoint("fileinfo", "POST", "/api/services/fileinfo", post_fileinfo,
             "Check the files of a service (did + serviceId) or one file object: validity, "
             "contentLength, contentType, filename and, with checksum, their sha256",
             params=FileInfoParams, body="json",
             responses=((200, "One entry per file, in order"),)),
]
