"""File details for fileinfo: validity, length, type, name and an optional sha256.

One upstream request per file, with the file's own method, headers and userdata
(probing with HEAD/OPTIONS gave wrong answers for POST files and for servers that
answer HEAD differently: provider#593). Without a checksum only the headers are read
and the connection is dropped; with one, at most ``max_checksum_length + 1`` bytes
are read (hashing on demand must not become a way to make us download huge files:
provider#562). An unreachable, refused or failing file is reported as invalid, never
raised: fileinfo answers 200 with ``valid: false``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncGenerator
from typing import Any, Final, cast

from tidegate.errors import TidegateError
from tidegate.files.objects import FileObject, HttpFileObject, SmartContractFile
from tidegate.files.reasons import reason_for_call_error, reason_for_error, reason_for_status
from tidegate.files.safe_fetch import DEFAULT_CHUNK_SIZE, UpstreamResponse
from tidegate.files.storages import StorageContext
from tidegate.types import digits_value

__all__ = ["content_length", "file_info"]

logger = logging.getLogger(__name__)

_CONTENT_RANGE: Final = re.compile(r"^\s*bytes\s+(?:\d+-\d+|\*)/(\d+)\s*$", re.IGNORECASE)


def _invalid(index: int, file: FileObject, reason: str,
             status: int | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"index": index, "valid": False, "type": file.type,
                             "reason": reason}
    if status is not None:
        entry["status"] = status
    return entry


def content_length(headers: Any) -> str:
    """The file's length from ``Content-Length``, else the total of ``Content-Range``.

    ``""`` when unknown. ``Content-Length`` is ignored when a content encoding was
    applied (it counts encoded bytes). ``bytes 0-99/1234`` gives ``"1234"`` (the
    reference gave ``"99/1234"``).
    """
    encoding = str(headers.get("content-encoding", "identity")).strip().lower()
    declared = digits_value(str(headers.get("content-length", "")).strip())
    if declared is not None and encoding == "identity":  # an origin may send "²"
        return str(declared)
    match = _CONTENT_RANGE.match(str(headers.get("content-range", "")))
    return match.group(1) if match else ""


async def _hash_body(response: UpstreamResponse, limit: int) -> tuple[str, int] | None:
    """(sha256 hex, size) of the body, or ``None`` once more than ``limit`` bytes came."""
    sha = hashlib.sha256()
    size = 0
    # Chunks no bigger than the budget: we stop right after the first network read
    # that goes past it, instead of after a full default-sized chunk.
    chunk_size = max(1, min(DEFAULT_CHUNK_SIZE, limit + 1))
    # iter_bytes is an async generator (typed as an iterator): close it when we stop early.
    body = cast(AsyncGenerator[bytes, None], response.iter_bytes(chunk_size))
    async with contextlib.aclosing(body) as chunks:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                return None  # closing drops the rest of the body unread
            sha.update(chunk)
    return sha.hexdigest(), size


async def _http_info(
    file: HttpFileObject, ctx: StorageContext, index: int, with_checksum: bool
) -> dict[str, Any]:
    request = file.request(ctx)  # a missing gateway is the operator's problem: 503
    try:
        response = await ctx.fetcher.open(request.method, request.url, headers=request.headers,
                                          params=request.params, json=request.json)
    except TidegateError as exc:
        logger.debug("fileinfo: %s file %d unreachable (%s)", file.type, index, exc.code)
        return _invalid(index, file, reason_for_error(exc))
    async with response:
        if not 200 <= response.status_code < 300:
            logger.debug("fileinfo: %s file %d answered %d", file.type, index,
                         response.status_code)
            return _invalid(index, file, reason_for_status(response.status_code),
                            response.status_code)
        length = content_length(response.headers)
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        filename = file.info_filename(response.url)
        details: dict[str, Any] = {}
        limit = ctx.max_checksum_length
        if with_checksum and not (length and int(length) > limit):
            try:
                digest = await _hash_body(response, limit)
            except TidegateError as exc:  # the body broke off: the file is not servable
                logger.debug("fileinfo: %s file %d body failed (%s)", file.type, index,
                             exc.code)
                reason = reason_for_error(exc)
                return _invalid(index, file, "interrupted" if reason == "unreachable" else reason)
            if digest is not None:
                details = {"checksum": digest[0], "checksumType": "sha256"}
                if not length and "content-range" not in response.headers:
                    length = str(digest[1])  # chunked: we counted the whole body
    if not (content_type or length or filename):
        return _invalid(index, file, "no_details")
    return {"index": index, "valid": True, "type": file.type, "contentLength": length,
            "contentType": content_type, "filename": filename, **details}


async def _smartcontract_info(
    file: SmartContractFile, ctx: StorageContext, index: int, with_checksum: bool
) -> dict[str, Any]:
    try:
        content = await file.call(ctx)
    except TidegateError as exc:  # revert, bad userdata, unknown chain, RPC down
        logger.debug("fileinfo: smartcontract file %d failed (%s)", index, exc.code)
        return _invalid(index, file, reason_for_call_error(exc))
    # contentLength is an int here, as the reference (len of the JSON text).
    info: dict[str, Any] = {"index": index, "valid": True, "type": file.type,
                            "contentLength": len(content), "contentType": "application/json",
                            "filename": ""}
    if with_checksum and len(content) <= ctx.max_checksum_length:
        info.update(checksum=hashlib.sha256(content).hexdigest(), checksumType="sha256")
    return info


async def file_info(
    file: FileObject, ctx: StorageContext, index: int, with_checksum: bool
) -> dict[str, Any]:
    """Details of one file, as fileinfo lists them.

    Valid: ``{"index", "valid": true, "type", "contentLength" (text, "" if unknown; an
    int for smartcontract), "contentType" (no parameters), "filename"}`` plus
    ``"checksum"``/``"checksumType": "sha256"`` when asked and the body is at most
    ``ctx.max_checksum_length`` bytes. Invalid (refused address, unreachable, non-2xx,
    nothing known about the answer): ``{"index", "valid": false, "type", "reason"}``
    (a code of :data:`tidegate.files.reasons.REASONS`, never the URL) plus ``"status"``
    for an answer outside 2xx.
    Raises only :class:`GatewayNotConfiguredError` (503).
    """
    if isinstance(file, SmartContractFile):
        return await _smartcontract_info(file, ctx, index, with_checksum)
    if not isinstance(file, HttpFileObject):
        raise TypeError(f"unknown file object {type(file).__name__}")
    return await _http_info(file, ctx, index, with_checksum)
