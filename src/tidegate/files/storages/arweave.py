"""``arweave`` files: ``{"type": "arweave", "transactionId": ...}`` via ``ARWEAVE_GATEWAY``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import yarl

from tidegate.files.storages import (
    FileObjectError,
    GatewayNotConfiguredError,
    HttpFileObject,
    StorageContext,
    UpstreamRequest,
    parse_headers,
    query_params,
    random_filename,
    required_text,
)
from tidegate.files.storages.ipfs import gateway_path

# A base64url transaction id, optionally followed by a path inside a manifest.
_ARWEAVE_PATH = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*$")


@dataclass(frozen=True)
class ArweaveFile(HttpFileObject):
    """A file on Arweave, fetched with GET ``{ARWEAVE_GATEWAY}/{transactionId}``.

    The gateway's trailing slash does not matter (the reference's ``urljoin`` needed
    one). fileinfo reports ``filename`` ``""`` and downloads get a random hex name, as
    the reference.
    """

    type: ClassVar[str] = "arweave"

    transaction_id: str
    headers: Mapping[str, str]
    userdata: Mapping[str, Any] | None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], userdata: Mapping[str, Any] | None) -> ArweaveFile:
        value = required_text(raw, "transactionId")
        if value is None:
            raise FileObjectError("malformed service files, missing transactionId.")
        value = value.strip()
        if not _ARWEAVE_PATH.match(value) or not gateway_path(value):
            raise FileObjectError("malformed service files, invalid transactionId.")
        return cls(transaction_id=value, headers=parse_headers(raw.get("headers")),
                   userdata=userdata)

    def request(self, ctx: StorageContext) -> UpstreamRequest:
        if not ctx.arweave_gateway:
            raise GatewayNotConfiguredError(
                "No ARWEAVE_GATEWAY defined, can not resolve arweave transaction id."
            )
        url = f"{ctx.arweave_gateway.rstrip('/')}/{self.transaction_id}"
        return UpstreamRequest("GET", url, self.headers, params=query_params(self.userdata))

    def download_filename(self, final_url: yarl.URL) -> str:
        return random_filename()

    def info_filename(self, final_url: yarl.URL) -> str:
        return ""
