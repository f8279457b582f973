"""File objects: parse a posted or decrypted JSON object into a typed, validated file.

:func:`parse_file_object` is the one entry point; the per-type modules live in
:mod:`tidegate.files.storages`. Types and their keys (as the reference Provider's
``ocean_provider/file_types/`` reads them):

* ``url``: ``url``, ``method`` (get/post, any case), ``headers``;
* ``ipfs``: ``hash`` (via ``IPFS_GATEWAY`` → ``{gateway}/ipfs/{hash}``);
* ``arweave``: ``transactionId`` (via ``ARWEAVE_GATEWAY`` → ``{gateway}/{id}``);
* ``graphql``: ``url``, ``query``, ``headers`` (POST ``{query, variables: userdata}``);
* ``smartcontract``: ``chainId``, ``address``, ``abi`` (one view/pure function).

A missing gateway is found when the request is built (:meth:`HttpFileObject.request`)
and raises :class:`GatewayNotConfiguredError` (503): the file is fine, the provider
lacks a dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from tidegate.files.storages import (
    MALFORMED,
    FileObject,
    FileObjectError,
    GatewayNotConfiguredError,
    HttpFileObject,
    StorageContext,
    UpstreamRequest,
    normalise_userdata,
    shown,
)
from tidegate.files.storages.arweave import ArweaveFile
from tidegate.files.storages.graphql import GraphqlFile
from tidegate.files.storages.ipfs import IpfsFile
from tidegate.files.storages.smartcontract import SmartContractFile
from tidegate.files.storages.url import UrlFile

__all__ = [
    "FILE_TYPES",
    "ArweaveFile",
    "FileObject",
    "FileObjectError",
    "GatewayNotConfiguredError",
    "GraphqlFile",
    "HttpFileObject",
    "IpfsFile",
    "SmartContractFile",
    "StorageContext",
    "UpstreamRequest",
    "UrlFile",
    "parse_file_object",
]

_Parser = Callable[[Mapping[str, Any], Mapping[str, Any] | None], FileObject]

#: ``type`` -> parser. The names are the reference's (lowercase, exact).
FILE_TYPES: Final[Mapping[str, _Parser]] = {
    "url": UrlFile.parse,
    "ipfs": IpfsFile.parse,
    "arweave": ArweaveFile.parse,
    "graphql": GraphqlFile.parse,
    "smartcontract": SmartContractFile.parse,
}


def parse_file_object(raw: object, userdata: object | None = None) -> FileObject:
    """The typed file for ``raw``, with the consumer's ``userdata`` attached.

    ``userdata`` is the request's (an object, or JSON text; text that is not an object
    is dropped); a ``userdata`` key inside ``raw`` is ignored, as the reference overwrites
    it. Raises :class:`FileObjectError` (400, ``invalid_file_object``) with the
    reference's messages: "cannot decrypt files for this service." (empty), "malformed
    file object." (not an object, no type, bad headers), "Unsupported type x", and the
    per-type messages. No message contains a URL.
    """
    if raw is None or (isinstance(raw, Mapping | list | str) and not raw):
        raise FileObjectError("cannot decrypt files for this service.")
    if not isinstance(raw, Mapping):
        raise FileObjectError(MALFORMED)
    kind = raw.get("type")
    if kind is None or kind == "":
        raise FileObjectError(MALFORMED)
    parser = FILE_TYPES.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise FileObjectError(f"Unsupported type {shown(kind)}")
    return parser(raw, normalise_userdata(userdata))
