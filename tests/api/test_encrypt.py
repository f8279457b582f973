import lzma
import os
from collections.abc import Callable

import ecies
import httpx
import pytest

from tests.conftest import start_app
from tests.helpers import PROVIDER_KEY
from tidegate.settings import Settings

ENCRYPT = "/api/services/encrypt"


@pytest.mark.parametrize(
    "body",
    [b"\x00", os.urandom(1024 * 1024), lzma.compress(b'{"id": "did:op:1"}' * 100)],
    ids=["1-byte", "1-MiB", "lzma"],
)
async def test_encrypt_round_trip(client: httpx.AsyncClient, body: bytes) -> None:
    r = await client.post(ENCRYPT, params={"chainId": 8996}, content=body,
                          headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201
    assert r.headers["content-type"] == "text/plain"  # exactly: ocean.py compares it
    assert r.text.startswith("0x04")
    assert len(r.text) == 2 + 2 * (97 + len(body))
    assert ecies.decrypt(PROVIDER_KEY[2:], bytes.fromhex(r.text[2:])) == body


async def test_any_content_type_is_accepted(client: httpx.AsyncClient) -> None:
    r = await client.post(ENCRYPT + "?chainId=8996", content=b'{"a": 1}',
                          headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201


async def test_encrypt_errors(client: httpx.AsyncClient) -> None:
    r = await client.post(ENCRYPT, content=b"x")
    assert (r.status_code, r.json()["code"]) == (400, "missing_chain_id")
    r = await client.post(ENCRYPT, params={"chainId": 1}, content=b"x")
    assert (r.status_code, r.json()["code"]) == (400, "unsupported_chain")
    r = await client.post(ENCRYPT, params={"chainId": "abc"}, content=b"x")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_chain_id")
    r = await client.post(ENCRYPT, params={"chainId": 8996}, content=b"")
    assert (r.status_code, r.json()["code"]) == (400, "empty_body")


async def test_body_over_limit_is_413(make_settings: Callable[..., Settings]) -> None:
    async for c in start_app(make_settings(TIDEGATE_MAX_ENCRYPT_BYTES="1000")):
        r = await c.post(ENCRYPT, params={"chainId": 8996}, content=b"x" * 1001)
        assert r.status_code == 413
        assert r.json()["code"] == "payload_too_large"

        async def chunks():  # no Content-Length: the limit applies while streaming
            for _ in range(3):
                yield b"y" * 600

        r = await c.post(ENCRYPT, params={"chainId": 8996}, content=chunks())
        assert r.status_code == 413
        r = await c.post(ENCRYPT, params={"chainId": 8996}, content=b"x" * 1000)
        assert r.status_code == 201
