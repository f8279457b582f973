"""fileinfo: details of a published service's files, or of one posted file object.

Two request forms (the reference Provider's; what ocean.py and ocean.js send):

* ``{"did", "serviceId", "checksum"?, "userdata"?}``: resolve the asset, decrypt the
  service's files with the provider key of its chain, one entry per file, in order;
* a bare file object ``{"type": "url", "url": ..., "checksum"?, "userdata"?}``: a
  one-entry list.

Validation follows the reference's rules and messages, but a request with neither
``did`` nor ``type`` is a 400 (the reference crashed with a 503).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

from tidegate.assets.resolver import Resolver, resolve_asset
from tidegate.chain.clients import Chains
from tidegate.errors import ValidationError
from tidegate.files.info import file_info
from tidegate.files.objects import FILE_TYPES, FileObject, HttpFileObject, parse_file_object
from tidegate.files.service_files import decrypt_service_files
from tidegate.files.storages import StorageContext

__all__ = ["file_infos", "validate_fileinfo_request", "wants_checksum"]

#: Files probed at once for one request: a DDO may list many files, and each probe
#: is an outbound connection on behalf of an unauthenticated caller.
MAX_CONCURRENT_PROBES: Final = 4
# Larger ciphertexts are decrypted off the event loop.
_INLINE_DECRYPT_LIMIT: Final = 128 * 1024
_TRUE: Final = frozenset({"true", "1", "yes", "on", "y", "t"})
_FALSE: Final = frozenset({"false", "0", "no", "off", "n", "f", ""})
# Keys a bare file object must have, per type (the reference's required_if rules).
_REQUIRED_IF: Final = {"ipfs": "hash", "url": "url", "arweave": "transactionId"}


def _present(value: object) -> bool:
    """The reference's ``required``: ``None``, ``""``, ``[]`` and ``{}`` are absent."""
    return value is not None and value != "" and value != [] and value != {}


def wants_checksum(raw: object) -> bool:
    """Whether ``checksum`` asks for one: true/1/"true"/"1"/"yes"… yes; false/0/"false"/absent no.

    Other non-empty text counts as yes (the reference tested truthiness).
    """
    if raw is None:
        return False
    if isinstance(raw, str):
        text = raw.strip().lower()
        return text not in _FALSE
    return bool(raw)


def validate_fileinfo_request(data: Mapping[str, Any]) -> None:
    """Check the request's shape; raises :class:`ValidationError` listing every problem."""
    errors: dict[str, str] = {}
    did, kind = data.get("did"), data.get("type")
    if _present(did):
        if not isinstance(did, str) or not did.startswith("did:op"):
            errors["did"] = "The did format is invalid."
    elif not _present(kind):
        errors["did"] = "The did field is required when type is not present."
    if not _present(kind):
        if not _present(did):
            errors["type"] = "The type field is required when did is not present."
        if not _present(data.get("serviceId")):
            errors["serviceId"] = "The serviceId field is required when type is not present."
    elif not isinstance(kind, str) or kind not in FILE_TYPES:
        errors["type"] = "The selected type is invalid."
    else:
        needed = _REQUIRED_IF.get(kind)
        if needed is not None and not _present(data.get(needed)):
            errors[needed] = f"The {needed} field is required when type is {kind}."
    if errors:
        raise ValidationError(errors)


async def _service_files(
    data: Mapping[str, Any], resolver: Resolver, chains: Chains
) -> list[dict[str, Any]]:
    asset = await resolve_asset(resolver, str(data["did"]))
    service = asset.service(str(data["serviceId"]))
    key = chains.get(asset.chain_id).provider_key
    if len(service.files) > _INLINE_DECRYPT_LIMIT:
        return await asyncio.to_thread(decrypt_service_files, asset, service, key)
    return decrypt_service_files(asset, service, key)


async def file_infos(
    data: Mapping[str, Any], resolver: Resolver, chains: Chains, ctx: StorageContext
) -> list[dict[str, Any]]:
    """The fileinfo answer for the request parameters ``data`` (one entry per file).

    Raises 400s for a bad request, an unknown DID ("Cannot resolve DID"), an unknown
    service (``invalid_service_id``), undecryptable files (``files_unavailable``) or
    a malformed file object (``invalid_file_object``); 503 when a needed gateway is
    not configured. Unreachable files are entries with ``valid: false``.
    """
    validate_fileinfo_request(data)
    with_checksum = wants_checksum(data.get("checksum"))
    userdata = data.get("userdata")
    # The did form wins when both are given, as in the reference.
    raws = await _service_files(data, resolver, chains) if _present(data.get("did")) else [data]
    files: list[FileObject] = [parse_file_object(raw, userdata) for raw in raws]
    for file in files:
        if isinstance(file, HttpFileObject):
            file.request(ctx)  # a missing gateway fails the request before any probe
    limiter = asyncio.Semaphore(MAX_CONCURRENT_PROBES)

    async def probe(index: int, file: FileObject) -> dict[str, Any]:
        async with limiter:
            return await file_info(file, ctx, index, with_checksum)

    # return_exceptions: every probe finishes (none is left running) before we raise.
    results = await asyncio.gather(*(probe(i, f) for i, f in enumerate(files)),
                                   return_exceptions=True)
    answer: list[dict[str, Any]] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        answer.append(result)
    return answer
