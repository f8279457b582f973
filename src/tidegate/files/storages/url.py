"""``url`` files: ``{"type": "url", "url": ..., "method": "get"|"post", "headers": {...}}``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import yarl

from tidegate.files.storages import (
    MISSING_KEYS,
    FileObjectError,
    HttpFileObject,
    StorageContext,
    UpstreamRequest,
    last_path_segment,
    parse_headers,
    query_params,
    required_text,
    safe_filename,
    shown,
)

_METHODS: Final = frozenset({"get", "post"})
# The reference's check for relative paths such as "./../dir": not a URL, and it
# would name a local file. (Other schemes are refused by the fetcher later.)
_HTTP_PREFIX = re.compile(r"^https?://", re.IGNORECASE)
_PATH_LIKE = re.compile(r"/.")


@dataclass(frozen=True)
class UrlFile(HttpFileObject):
    """A file at an HTTP(S) URL, fetched with GET or POST.

    Userdata goes to the query string of a GET and is the JSON body of a POST.
    """

    type: ClassVar[str] = "url"

    url: str
    method: str
    headers: Mapping[str, str]
    userdata: Mapping[str, Any] | None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], userdata: Mapping[str, Any] | None) -> UrlFile:
        """Validate ``raw``; raises :class:`FileObjectError` with the reference's messages."""
        url = required_text(raw, "url")
        if url is None:
            raise FileObjectError(MISSING_KEYS)
        method_raw = raw.get("method") or "get"
        if not isinstance(method_raw, str):
            raise FileObjectError(f"Unsafe method {shown(method_raw)}.")
        method = method_raw.lower()
        if method not in _METHODS:
            raise FileObjectError(f"Unsafe method {shown(method)}.")
        if not _HTTP_PREFIX.match(url) and _PATH_LIKE.search(url):
            raise FileObjectError(
                "Invalid file name format. It was not possible to get the file name."
            )
        return cls(url=url, method=method.upper(), headers=parse_headers(raw.get("headers")),
                   userdata=userdata)

    def request(self, ctx: StorageContext) -> UpstreamRequest:
        if self.method == "POST":
            return UpstreamRequest("POST", self.url, self.headers, json=self.userdata or None)
        return UpstreamRequest("GET", self.url, self.headers, params=query_params(self.userdata))

    def download_filename(self, final_url: yarl.URL) -> str:
        return safe_filename(last_path_segment(final_url))

    def info_filename(self, final_url: yarl.URL) -> str:
        return last_path_segment(final_url)
