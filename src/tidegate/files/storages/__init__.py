"""What every file type shares: the context, the error, the upstream request, helpers.

One module per file type sits next to this one (``url``, ``ipfs``, ``arweave``,
``graphql``, ``smartcontract``). Each parses its JSON object into a frozen dataclass
and knows how to reach its bytes: the HTTP-based types build one
:class:`UpstreamRequest` (sent through :class:`~tidegate.files.safe_fetch.SafeFetcher`
by :mod:`tidegate.files.open` and :mod:`tidegate.files.info`); the smartcontract type
makes one ``eth_call``. :func:`tidegate.files.objects.parse_file_object` dispatches.

Nothing here may put a URL, header value or userdata into an error message: file
objects are secrets of their publisher (decrypted from the DDO).
"""

from __future__ import annotations

import json
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import yarl

from tidegate.chain.clients import Chains
from tidegate.errors import BadRequestError, ServiceUnavailableError
from tidegate.files.safe_fetch import SafeFetcher
from tidegate.files.urls import parse_url
from tidegate.types import userdata_object

__all__ = [
    "MALFORMED",
    "MISSING_KEYS",
    "FileObject",
    "FileObjectError",
    "GatewayNotConfiguredError",
    "HttpFileObject",
    "StorageContext",
    "UpstreamRequest",
    "last_path_segment",
    "normalise_userdata",
    "parse_headers",
    "query_params",
    "random_filename",
    "required_text",
    "safe_filename",
    "shown",
]

#: The reference's messages, kept verbatim (clients show them to publishers).
MALFORMED: Final = "malformed file object."
MISSING_KEYS: Final = "malformed service files, missing required keys."

# RFC 9110 token: what a header name may be. Values must not break the framing.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# What may appear of a client-given token (type, method) in an error message.
_SHOWABLE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
# Characters kept in a download filename; everything else becomes "_".
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._+~()@-]")
_MAX_FILENAME = 200


class FileObjectError(BadRequestError):
    """A file object (posted, or decrypted from a DDO) is malformed or unsupported."""

    code = "invalid_file_object"


class GatewayNotConfiguredError(ServiceUnavailableError):
    """An ipfs/arweave file needs a gateway the operator did not configure.

    503, not 400: the file object is fine, this provider lacks a dependency
    (``IPFS_GATEWAY`` / ``ARWEAVE_GATEWAY``).
    """

    code = "gateway_not_configured"


@dataclass(frozen=True)
class StorageContext:
    """What reaching a file's bytes needs, built once per request from the app services.

    ``max_checksum_length``: largest body (bytes) :func:`tidegate.files.info.file_info`
    hashes. Gateways are base URLs (``https://ipfs.io``, ``https://arweave.net/``).
    """

    ipfs_gateway: str | None
    arweave_gateway: str | None
    chains: Chains
    fetcher: SafeFetcher
    max_checksum_length: int


@dataclass(frozen=True)
class UpstreamRequest:
    """The one HTTP request that reaches a file: to be sent with ``SafeFetcher.open``.

    ``json`` is the body (``None``: no body). ``params`` are merged into the URL.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    params: Mapping[str, str | list[str]] | None = None
    json: Any = None

    def with_range(self, range_header: str | None) -> UpstreamRequest:
        """This request with ``Range`` added, unless absent or the file sets its own.

        The file's own headers win (as in the reference): a publisher who serves a
        fixed slice keeps serving that slice.
        """
        if not range_header or any(name.lower() == "range" for name in self.headers):
            return self
        return UpstreamRequest(self.method, self.url, {**self.headers, "Range": range_header},
                               self.params, self.json)


class FileObject(ABC):
    """A parsed, validated file object. Subclasses are frozen dataclasses.

    ``userdata`` is the consumer's request ``userdata`` (never the file's own key),
    normalised to an object or ``None``.
    """

    type: ClassVar[str]
    userdata: Mapping[str, Any] | None


class HttpFileObject(FileObject):
    """A file reached by one HTTP request (url, ipfs, arweave, graphql)."""

    @abstractmethod
    def request(self, ctx: StorageContext) -> UpstreamRequest:
        """The upstream request; raises :class:`GatewayNotConfiguredError` if needed."""

    @abstractmethod
    def download_filename(self, final_url: yarl.URL) -> str:
        """A name safe for ``Content-Disposition: attachment;filename=NAME``."""

    @abstractmethod
    def info_filename(self, final_url: yarl.URL) -> str:
        """The ``filename`` fileinfo reports (may be ``""``)."""


def shown(value: object) -> str:
    """``value`` as it may appear in an error message (a short token, or a placeholder)."""
    if isinstance(value, str) and _SHOWABLE.match(value):
        return value
    return "<invalid>"


def required_text(raw: Mapping[str, Any], key: str) -> str | None:
    """``raw[key]`` if it is a non-empty string; ``None`` if absent or empty.

    A present value of another type is malformed (the reference's enforce_types).
    """
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FileObjectError(MALFORMED)
    return value


def parse_headers(raw: object) -> dict[str, str]:
    """A file object's ``headers``: a JSON object of header names to text values.

    Numbers are rendered as text; anything else (a string, a list, a nested object,
    a name that is not a token, a value with control characters) is malformed.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise FileObjectError(MALFORMED)
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise FileObjectError(MALFORMED)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise FileObjectError(MALFORMED)
        text = str(value)
        if _HEADER_VALUE_FORBIDDEN.search(text):
            raise FileObjectError(MALFORMED)
        headers[name] = text
    return headers


def normalise_userdata(raw: object) -> dict[str, Any] | None:
    """The request's ``userdata`` as an object, or ``None`` when empty or undecodable.

    The one rule of :func:`tidegate.types.userdata_object` (the reference's download:
    text that does not decode to an object is dropped).
    """
    return userdata_object(raw)


def _query_value(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)  # what ``requests`` sends, so origins see the same query
    return json.dumps(value, separators=(",", ":"))


def query_params(userdata: Mapping[str, Any] | None) -> dict[str, str | list[str]] | None:
    """Userdata as query parameters for a GET: lists repeat the key, ``None`` is dropped."""
    if not userdata:
        return None
    params: dict[str, str | list[str]] = {}
    for key, value in userdata.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            params[str(key)] = [_query_value(item) for item in value if item is not None]
        else:
            params[str(key)] = _query_value(value)
    return params or None


def last_path_segment(url: yarl.URL | str) -> str:
    """The (percent-decoded) text after the last ``/`` of the URL's path."""
    try:
        path = (url if isinstance(url, yarl.URL) else parse_url(url)).path
    except ValueError:  # InvalidUrl, or an escape yarl cannot decode
        return ""
    return path.rsplit("/", 1)[-1]


def random_filename() -> str:
    """A uuid4 hex: the reference's name for ipfs, arweave and graphql downloads."""
    return uuid.uuid4().hex


def safe_filename(name: str) -> str:
    """``name`` made safe for ``attachment;filename=NAME``; a random name if nothing is left.

    Keeps ASCII letters, digits and ``._+~()@-``; drops quotes, slashes, backslashes,
    CR/LF, ``;`` and spaces (clients parse the header without quoting) and collapses
    ``..`` (ocean.py refuses names containing it).
    """
    cleaned = _FILENAME_UNSAFE.sub("_", name)
    while ".." in cleaned:
        cleaned = cleaned.replace("..", ".")
    cleaned = cleaned[-_MAX_FILENAME:]  # keep the extension
    if cleaned.strip("._") == "":
        return random_filename()
    return cleaned
