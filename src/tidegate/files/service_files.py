"""Decrypt a service's ``files`` and check what binds them to the asset.

``services[].files`` is the ``0x`` hex of an ECIES ciphertext made by ``/encrypt`` for
this provider. Its UTF-8 JSON plaintext is, by DDO ``version``:

* ``"4.0.0"`` (or no version): a list of file objects;
* any later version: ``{"datatokenAddress", "nftAddress", "files": [...]}``, where the
  datatoken must be the service's and the NFT the asset's. Without this binding a
  publisher could copy another asset's encrypted files into their own DDO and have
  this provider serve them.

Every failure gives the same 400 (``files_unavailable``, "Unable to get dataset
files"): the reason is logged (never the plaintext) but not told to the caller, as
the reference.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, Final

import orjson

from tidegate.assets.ddo import Asset, Service
from tidegate.crypto import ecies
from tidegate.errors import BadRequestError
from tidegate.types import HEX_BYTES, checksum_address, is_address

__all__ = ["FilesUnavailableError", "decrypt_service_files"]

logger = logging.getLogger(__name__)

_PLAIN_LIST_VERSIONS: Final = frozenset({"4.0.0"})
_BINDING_KEYS: Final = ("datatokenAddress", "nftAddress", "files")


class FilesUnavailableError(BadRequestError):
    """The service's files cannot be decrypted, decoded or do not belong to it."""

    code = "files_unavailable"

    def __init__(self) -> None:
        super().__init__("Unable to get dataset files")


def _refuse(asset: Asset, service: Service, reason: str) -> FilesUnavailableError:
    # The DID and service id are public; the reason names no content.
    logger.info("files of %s service %s refused: %s", asset.did, service.id, reason)
    return FilesUnavailableError()


def _same_address(value: object, expected: str) -> bool:
    return isinstance(value, str) and is_address(value) and (
        checksum_address(value) == checksum_address(expected)
    )


@lru_cache(maxsize=1024)
def _decrypt(provider_key: str, files_hex: str) -> bytes:
    # Every download of a service decrypts the same ciphertext: keep the plaintext
    # (bounded). It is parsed again per call, so callers get their own objects.
    return ecies.decrypt(provider_key, bytes.fromhex(files_hex.removeprefix("0x")))


def decrypt_service_files(
    asset: Asset, service: Service, provider_key: str
) -> list[dict[str, Any]]:
    """The service's file objects, in order (not yet validated one by one).

    ``provider_key`` is the provider's key on ``asset.chain_id``. Raises
    :class:`FilesUnavailableError` if the ciphertext is not ours, the plaintext is
    not the JSON the DDO version requires, the datatoken or NFT binding does not
    match, or an entry is not an object.
    """
    if not service.files.removeprefix("0x") or not HEX_BYTES.fullmatch(service.files):
        raise _refuse(asset, service, "files is not hex")
    try:
        plaintext = _decrypt(provider_key, service.files)
    except ecies.DecryptionFailedError:
        raise _refuse(asset, service, "decryption failed") from None
    try:
        decoded: Any = orjson.loads(plaintext)
    except orjson.JSONDecodeError:
        raise _refuse(asset, service, "plaintext is not JSON") from None

    if asset.version in _PLAIN_LIST_VERSIONS:
        files = decoded
    else:
        if not isinstance(decoded, dict):
            raise _refuse(asset, service, "expected an object with the files")
        missing = [key for key in _BINDING_KEYS if key not in decoded]
        if missing:
            raise _refuse(asset, service, f"key {missing[0]} not found in files")
        if not _same_address(decoded["datatokenAddress"], service.datatoken):
            raise _refuse(asset, service, "mismatch of datatoken")
        if not _same_address(decoded["nftAddress"], asset.nft_address):
            raise _refuse(asset, service, "mismatch of dataNft")
        files = decoded["files"]
    if not isinstance(files, list):
        raise _refuse(asset, service, "expected a files list")
    if not all(isinstance(item, dict) for item in files):
        raise _refuse(asset, service, "a file entry is not an object")
    return files
