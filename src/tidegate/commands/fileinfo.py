"""fileinfo: details of a published service's files, or of one posted file object.

Two forms (the reference Provider's; what ocean.py and ocean.js send): a DID and service id
(resolve the asset, decrypt the service's files with the provider key of its chain:
one entry per file, in order), or one file object (a one-entry list). The request's
shape is checked at the edge (``tidegate.api.endpoints.files``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

from tidegate.assets.resolver import Resolver
from tidegate.chain.clients import Chains
from tidegate.commands.asset_services import service_files, service_of
from tidegate.files.info import file_info
from tidegate.files.objects import FileObject, HttpFileObject, parse_file_object
from tidegate.files.storages import StorageContext

__all__ = ["FileEntry", "FileObjectInfo", "ServiceFilesInfo", "file_infos"]

#: Files probed at once for one request: a DDO may list many files, and each probe
#: is an outbound connection on behalf of an unauthenticated caller.
MAX_CONCURRENT_PROBES: Final = 4

FileEntry = dict[str, Any]
"""One file's details, as :func:`tidegate.files.info.file_info` reports them."""


@dataclass(frozen=True)
class ServiceFilesInfo:
    """Describe every file of service ``service_id`` of ``did``."""

    did: str
    service_id: str
    with_checksum: bool = False
    userdata: dict[str, Any] | None = None


@dataclass(frozen=True)
class FileObjectInfo:
    """Describe one file object given by the caller."""

    file: FileObject
    with_checksum: bool = False


async def file_infos(
    cmd: ServiceFilesInfo | FileObjectInfo, resolver: Resolver, chains: Chains,
    ctx: StorageContext,
) -> list[FileEntry]:
    """One entry per file, in order.

    Raises 400s for an unknown DID ("Cannot resolve DID"), an unknown service
    (``invalid_service_id``), undecryptable files (``files_unavailable``) or a
    malformed file object (``invalid_file_object``); 503 when a needed gateway is not
    configured. Unreachable files are entries with ``valid: false``.
    """
    if isinstance(cmd, ServiceFilesInfo):
        found = await service_of(resolver, chains, cmd.did, cmd.service_id)
        files = [parse_file_object(raw, cmd.userdata) for raw in await service_files(found)]
    else:
        files = [cmd.file]
    for file in files:
        if isinstance(file, HttpFileObject):
            file.request(ctx)  # a missing gateway fails the request before any probe
    limiter = asyncio.Semaphore(MAX_CONCURRENT_PROBES)

    async def probe(index: int, file: FileObject) -> FileEntry:
        async with limiter:
            return await file_info(file, ctx, index, cmd.with_checksum)

    # return_exceptions: every probe finishes (none is left running) before we raise.
    results = await asyncio.gather(*(probe(i, f) for i, f in enumerate(files)),
                                   return_exceptions=True)
    answer: list[FileEntry] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        answer.append(result)
    return answer
