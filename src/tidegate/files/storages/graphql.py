"""``graphql`` files: ``{"type": "graphql", "url": ..., "query": ..., "headers": {...}}``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import yarl

from tidegate.files.storages import (
    FileObjectError,
    HttpFileObject,
    StorageContext,
    UpstreamRequest,
    last_path_segment,
    parse_headers,
    random_filename,
    required_text,
)


@dataclass(frozen=True)
class GraphqlFile(HttpFileObject):
    """The answer of a GraphQL query: always a POST of ``{"query", "variables"}``.

    ``variables`` is the consumer's userdata, sent only when there is some (as the
    reference). Downloads get a random hex name.
    """

    type: ClassVar[str] = "graphql"

    url: str
    query: str
    headers: Mapping[str, str]
    userdata: Mapping[str, Any] | None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], userdata: Mapping[str, Any] | None) -> GraphqlFile:
        url = required_text(raw, "url")
        if url is None:
            raise FileObjectError("missing graphql endpoint")
        query = required_text(raw, "query")
        if query is None:
            raise FileObjectError("missing graphql query")
        return cls(url=url, query=query, headers=parse_headers(raw.get("headers")),
                   userdata=userdata)

    def request(self, ctx: StorageContext) -> UpstreamRequest:
        body: dict[str, Any] = {"query": self.query}
        if self.userdata:
            body["variables"] = dict(self.userdata)
        return UpstreamRequest("POST", self.url, self.headers, json=body)

    def download_filename(self, final_url: yarl.URL) -> str:
        return random_filename()

    def info_filename(self, final_url: yarl.URL) -> str:
        return last_path_segment(final_url)
