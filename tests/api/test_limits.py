"""Request size limits at the edge: a JSON parameters body over 1 MiB is a 413 JSON
error, refused from its Content-Length before it is read, or by count when it streams."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from tidegate.api.params import MAX_PARAMS_BODY


async def test_a_declared_body_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    body = b'{"did": "' + b"a" * MAX_PARAMS_BODY + b'"}'
    r = await client.post("/api/services/fileinfo", content=body,
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"


async def test_a_streamed_body_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        yield b'{"did": "'
        for _ in range(MAX_PARAMS_BODY // 65536 + 2):
            yield b"a" * 65536

    r = await client.post("/api/services/fileinfo", content=chunks(),
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


async def test_a_body_at_the_limit_is_read(client: httpx.AsyncClient) -> None:
    body = b'{"did": "did:op:' + b"a" * 64 + b'", "serviceId": "0", "pad": "'
    body += b"x" * (MAX_PARAMS_BODY - len(body) - 2) + b'"}'
    assert len(body) == MAX_PARAMS_BODY
    r = await client.post("/api/services/fileinfo", content=body,
                          headers={"Content-Type": "application/json"})
    assert r.status_code != 413, r.text
