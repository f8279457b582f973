"""``ipfs`` files: ``{"type": "ipfs", "hash": "<CID>[/path]"}`` through ``IPFS_GATEWAY``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import yarl

from tidegate.files.storages import (
    MISSING_KEYS,
    FileObjectError,
    GatewayNotConfiguredError,
    HttpFileObject,
    StorageContext,
    UpstreamRequest,
    last_path_segment,
    parse_headers,
    query_params,
    random_filename,
    required_text,
)

# A CID, optionally followed by a path inside it. No "%", "?", "#", "\" or "..":
# the hash is appended to the gateway URL and must not walk elsewhere on that host.
_IPFS_PATH = re.compile(r"^[A-Za-z0-9]+(?:/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*$")


def gateway_path(value: str) -> bool:
    """True if ``value`` is a safe path to append to a gateway (no dot segments)."""
    return all(segment not in (".", "..") for segment in value.split("/"))


@dataclass(frozen=True)
class IpfsFile(HttpFileObject):
    """A file on IPFS, fetched with GET ``{IPFS_GATEWAY}/ipfs/{hash}``.

    Userdata goes to the query string (as the reference). Downloads are named with a
    random hex (the CID is not exposed in ``Content-Disposition``); fileinfo reports
    the last segment of the gateway URL (usually the CID), as the reference.
    """

    type: ClassVar[str] = "ipfs"

    hash: str
    headers: Mapping[str, str]
    userdata: Mapping[str, Any] | None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], userdata: Mapping[str, Any] | None) -> IpfsFile:
        value = required_text(raw, "hash")
        if value is None:
            raise FileObjectError(MISSING_KEYS)
        value = value.strip()
        if value.startswith("/ipfs/"):  # "/ipfs/<cid>" is a common way to write a CID
            value = value.removeprefix("/ipfs/")
        if not _IPFS_PATH.match(value) or not gateway_path(value):
            raise FileObjectError("malformed service files, invalid ipfs hash.")
        return cls(hash=value, headers=parse_headers(raw.get("headers")), userdata=userdata)

    def request(self, ctx: StorageContext) -> UpstreamRequest:
        if not ctx.ipfs_gateway:
            raise GatewayNotConfiguredError("No IPFS_GATEWAY defined, can not resolve ipfs hash.")
        url = f"{ctx.ipfs_gateway.rstrip('/')}/ipfs/{self.hash}"
        return UpstreamRequest("GET", url, self.headers, params=query_params(self.userdata))

    def download_filename(self, final_url: yarl.URL) -> str:
        return random_filename()

    def info_filename(self, final_url: yarl.URL) -> str:
        return last_path_segment(final_url)
