"""Open a file's bytes for streaming: exactly one upstream request, checked, no probes.

Used by the download endpoint. :func:`open_file` sends the file's own request
(method, headers, userdata) through the :class:`SafeFetcher`, adds the client's
``Range`` when the file sets none, and refuses an upstream error status *before* any
byte is relayed: a download must never pass an origin's error page off as the file.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from tidegate.files.objects import FileObject, HttpFileObject, SmartContractFile
from tidegate.files.ranges import RangeNotSatisfiableError
from tidegate.files.safe_fetch import UpstreamResponse, UpstreamUnavailableError
from tidegate.files.storages import StorageContext, random_filename

__all__ = ["RELAYED_HEADERS", "FileStream", "RangeNotSatisfiableError", "open_file"]

logger = logging.getLogger(__name__)

#: Upstream headers a download may relay (lowercase names).
RELAYED_HEADERS: Final = ("content-type", "content-length", "content-range",
                          "content-disposition", "accept-ranges")


@dataclass
class FileStream:
    """An opened file: status and headers known, body not yet read.

    ``status_code`` is the upstream's (200, or 206 for a range). ``headers`` holds
    the subset of :data:`RELAYED_HEADERS` the upstream sent (lowercase names;
    ``content-length`` only when it is the size of the bytes :meth:`iter_bytes`
    yields). ``filename`` is safe for ``Content-Disposition: attachment;filename=NAME``.
    Iterate once; always :meth:`aclose` (idempotent; iteration also closes at the end).
    """

    status_code: int
    headers: Mapping[str, str]
    filename: str
    _upstream: UpstreamResponse | None = field(default=None, repr=False)
    _content: bytes = field(default=b"", repr=False)

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives (pieces of at most one socket read, not copied again);
        transport failures raise Tidegate errors."""
        if self._upstream is None:
            if self._content:
                yield self._content
            return
        async for piece in self._upstream.iter_pieces():
            yield piece

    async def aclose(self) -> None:
        """Release the upstream connection, if any."""
        if self._upstream is not None:
            await self._upstream.aclose()


def _relayed(response: UpstreamResponse) -> dict[str, str]:
    headers = {name: response.headers[name] for name in RELAYED_HEADERS
               if name in response.headers}
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        # The fetcher decodes the body: the declared length is the encoded one.
        headers.pop("content-length", None)
    return headers


async def _open_smartcontract(file: SmartContractFile, ctx: StorageContext) -> FileStream:
    content = await file.call(ctx)
    return FileStream(
        status_code=200,
        headers={"content-type": "application/json", "content-length": str(len(content))},
        filename=random_filename(),
        _content=content,
    )


async def open_file(
    file: FileObject, ctx: StorageContext, *, range_header: str | None = None
) -> FileStream:
    """Send the file's one upstream request and return the answer, body unread.

    ``range_header`` (the client's ``Range``) is passed upstream unless the file's
    own headers set one. Raises: :class:`GatewayNotConfiguredError` (503);
    :class:`~tidegate.files.safe_fetch.UnsafeUrlError` (400) for a refused URL;
    ``UpstreamTimeoutError`` (504); ``UpstreamUnavailableError`` (502) when the
    origin fails or answers with a non-2xx status; :class:`RangeNotSatisfiableError`
    (416) when the origin refuses the client's range. A smartcontract file is called
    at once and served from memory as ``application/json``.
    """
    if isinstance(file, SmartContractFile):
        return await _open_smartcontract(file, ctx)
    if not isinstance(file, HttpFileObject):
        raise TypeError(f"unknown file object {type(file).__name__}")
    base = file.request(ctx)
    request = base.with_range(range_header)
    response = await ctx.fetcher.open(request.method, request.url, headers=request.headers,
                                      params=request.params, json=request.json)
    status = response.status_code
    if not 200 <= status < 300:
        await response.aclose()
        logger.info("upstream answered %d for a %s file", status, file.type)
        if status == 416 and request is not base:
            raise RangeNotSatisfiableError("The requested range is not satisfiable.")
        raise UpstreamUnavailableError(f"the file's server answered with status {status}")
    return FileStream(
        status_code=status,
        headers=_relayed(response),
        filename=file.download_filename(response.url),
        _upstream=response,
    )
